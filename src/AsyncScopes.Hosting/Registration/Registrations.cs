using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace AsyncScopes.Hosting;

/// <summary>What the pool and queue registrations share.</summary>
internal static class Registrations
{
    /// <summary>Registers the code-given options of <paramref name="name"/>, their validation (at the host's start)
    /// and the factory that starts from them; returns the builder of those named options.</summary>
    public static OptionsBuilder<TOptions> AddNamedOptions<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(
        IServiceCollection services,
        string name,
        Func<IServiceProvider, TOptions> create,
        Func<TOptions, IEnumerable<ArgumentException>> findProblems)
        where TOptions : class
    {
        services.AddSingleton(new OptionsSource<TOptions>(name, create));
        services.TryAddTransient<IOptionsFactory<TOptions>, NamedOptionsFactory<TOptions>>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>>(new ProblemsValidation<TOptions>(findProblems)));
        return services.AddOptions<TOptions>(name).ValidateOnStart();
    }

    /// <summary>Throws unless <paramref name="name"/> is a name not yet taken by a <typeparamref name="TService"/>.</summary>
    public static void ThrowIfTaken<TService>(IServiceCollection services, string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (services.Any(service => service.ServiceType == typeof(TService) && service.IsKeyedService && Equals(service.ServiceKey, name)))
        {
            throw new InvalidOperationException($"{TypeName(typeof(TService))} '{name}' is already registered.");
        }
    }

    private static string TypeName(Type type) => type.IsGenericType
        ? $"{type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)]}<{string.Join(", ", type.GenericTypeArguments.Select(TypeName))}>"
        : type.Name;

    /// <summary>Fails with every bad setting, as the constructor would name it, so that a start lists them all.</summary>
    private sealed class ProblemsValidation<TOptions>(Func<TOptions, IEnumerable<ArgumentException>> findProblems) : IValidateOptions<TOptions>
        where TOptions : class
    {
        public ValidateOptionsResult Validate(string? name, TOptions options)
        {
            List<string> failures = [.. findProblems(options).Select(problem => Describe(name, problem))];
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }

        // "'db': MaxSize must be at least 1 (it is 0)." An exception's Message adds the parameter and the value on
        // lines of their own, which a list of failures cannot show.
        private static string Describe(string? name, ArgumentException problem)
        {
            string message = problem.Message;
            int suffix = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
            message = suffix < 0 ? message : message[..suffix];
            string actual = problem is ArgumentOutOfRangeException { ActualValue: { } value }
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $" (it is {value})")
                : string.Empty;
            return $"'{name}': {message.TrimEnd('.')}{actual}.";
        }
    }
}
