namespace AsyncScopes.Hosting;

/// <summary>
/// Options of a <see cref="HostedTaskScope"/>, registered by name with
/// <see cref="Microsoft.Extensions.DependencyInjection.HostedTaskScopeServiceCollectionExtensions.AddHostedTaskScope"/>;
/// validated when the host starts. The grace of its stop is not here: it is the host's shutdown timeout
/// (<c>HostOptions.ShutdownTimeout</c>).
/// </summary>
public sealed class HostedTaskScopeOptions
{
    /// <summary>How long after the scope's token fired (the end of the grace) a child may still run before it is logged
    /// as a warning, with its name. The stop still waits for it. Default: 5 seconds;
    /// <see cref="Timeout.InfiniteTimeSpan"/>: never logged.</summary>
    public TimeSpan StragglerTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The clock of <see cref="StragglerTimeout"/>. Default: <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Whether a child's failure stops the host (<c>IHostApplicationLifetime.StopApplication</c>), as a failed
    /// <c>BackgroundService</c> does with the host's default <c>BackgroundServiceExceptionBehavior.StopHost</c>.
    /// Default: <see langword="true"/>. When <see langword="false"/>, the failure is logged, and the scope, which
    /// cancelled its other children, starts no more until the host stops.</summary>
    public bool StopHostOnFailure { get; set; } = true;

    /// <summary>Every setting out of range, each as an exception that names it.</summary>
    internal IEnumerable<ArgumentException> FindProblems()
    {
        if (Cancellation.TimeoutOutOfRange(StragglerTimeout, nameof(StragglerTimeout), infiniteAllowed: true, zeroAllowed: false) is { } straggler)
        {
            yield return straggler;
        }

        if (TimeProvider is null)
        {
            yield return new ArgumentException("TimeProvider must not be null.", nameof(TimeProvider));
        }
    }
}
