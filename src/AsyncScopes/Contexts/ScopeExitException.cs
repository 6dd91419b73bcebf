using System.Diagnostics.CodeAnalysis;

namespace AsyncScopes;

/// <summary>
/// Thrown when one or more exits failed on top of another failure. <see cref="AggregateException.InnerExceptions"/>
/// holds, in the order they happened, the body's exception (if any), then each exception thrown by an exit.
/// </summary>
/// <remarks>
/// The list is always flat: when the failure an exit saw already is a <see cref="ScopeExitException"/>, the exit's
/// exception is appended to a copy of its list rather than nested inside it.
/// </remarks>
[SuppressMessage("Design", "CA1032:Implement standard exception constructors",
    Justification = "A ScopeExitException always carries the exceptions it aggregates; it has no meaning without them.")]
public sealed class ScopeExitException : AggregateException
{
    private const string Summary = "One or more scope exits failed on top of another failure.";

    /// <summary>Creates the exception from the failures, in the order they happened.</summary>
    /// <param name="innerExceptions">The body's exception (if any), then each exception thrown by an exit; read once.</param>
    /// <exception cref="ArgumentNullException"><paramref name="innerExceptions"/> or one of its items is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="innerExceptions"/> is empty: there is no failure to report.</exception>
    public ScopeExitException(IEnumerable<Exception> innerExceptions)
        : base(Summary, Checked(innerExceptions))
    {
    }

    private ScopeExitException(List<Exception> innerExceptions)
        : base(Summary, innerExceptions)
    {
    }

    // Read into an array once, so that a sequence that can be read only once is checked and kept whole.
    private static Exception[] Checked(IEnumerable<Exception> innerExceptions)
    {
        ArgumentNullException.ThrowIfNull(innerExceptions);
        Exception[] all = [.. innerExceptions];
        if (all.Length == 0)
        {
            throw new ArgumentException("A ScopeExitException needs at least one exception.", nameof(innerExceptions));
        }

        foreach (var exception in all)
        {
            ArgumentNullException.ThrowIfNull(exception, nameof(innerExceptions));
        }

        return all;
    }

    /// <summary>
    /// The outcome after an exit threw <paramref name="exitError"/> while <paramref name="current"/> was in flight.
    /// </summary>
    /// <remarks>
    /// <list type="bullet">
    /// <item>No failure in flight: the exit's exception, as itself.</item>
    /// <item>The exit rethrew the failure it saw (the same object), or a <see cref="ScopeExitException"/> that already
    /// starts with it (a nested scope that combined it): the exit's exception, so nothing is listed twice.</item>
    /// <item>Otherwise a new flat <see cref="ScopeExitException"/>: the failures of <paramref name="current"/>,
    /// then those of <paramref name="exitError"/>.</item>
    /// </list>
    /// </remarks>
    internal static Exception Combine(Exception? current, Exception exitError)
    {
        if (current is null || ReferenceEquals(current, exitError) || StartsWith(exitError, current))
        {
            return exitError;
        }

        var all = new List<Exception>();
        AddFlattened(all, current);
        AddFlattened(all, exitError);
        return new ScopeExitException(all);
    }

    private static bool StartsWith(Exception exitError, Exception current)
    {
        if (exitError is not ScopeExitException combined)
        {
            return false;
        }

        var inner = combined.InnerExceptions;
        if (current is ScopeExitException currentCombined)
        {
            var prefix = currentCombined.InnerExceptions;
            if (prefix.Count > inner.Count)
            {
                return false;
            }

            for (int i = 0; i < prefix.Count; i++)
            {
                if (!ReferenceEquals(prefix[i], inner[i]))
                {
                    return false;
                }
            }

            return true;
        }

        return ReferenceEquals(inner[0], current); // never empty: the constructor rejects an empty list
    }

    private static void AddFlattened(List<Exception> list, Exception exception)
    {
        if (exception is ScopeExitException combined)
        {
            list.AddRange(combined.InnerExceptions);
        }
        else
        {
            list.Add(exception);
        }
    }
}
