using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AsyncScopes.Hosting;

/// <summary>What the pool and queue registrations share.</summary>
internal static class Registrations
{
    /// <summary>Registers the named options of a registration: named after it unless configured otherwise, every bad
    /// setting listed when the host starts; returns their builder.</summary>
    public static OptionsBuilder<TOptions> AddNamedOptions<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(
        IServiceCollection services,
        string name,
        Action<TOptions, string> nameThem,
        Func<TOptions, IEnumerable<ArgumentException>> findProblems)
        where TOptions : class
    {
        services.AddSingleton<IValidateOptions<TOptions>>(new ProblemsValidation<TOptions>(name, findProblems));
        return services.AddOptions<TOptions>(name)
            .PostConfigure(options => nameThem(options, name))
            .ValidateOnStart();
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

    /// <summary>A type's name as C# writes it, without namespaces: <c>AsyncPool&lt;DbConnection&gt;</c>.</summary>
    public static string TypeName(Type type)
    {
        string name = type.Name;
        int arity = name.IndexOf('`', StringComparison.Ordinal);
        return arity < 0 || !type.IsGenericType
            ? name
            : $"{name[..arity]}<{string.Join(", ", type.GenericTypeArguments.Select(TypeName))}>";
    }

    /// <summary>Fails with every bad setting of the options of one name, as the constructor would name it, so that a
    /// start lists them all.</summary>
    private sealed class ProblemsValidation<TOptions>(string name, Func<TOptions, IEnumerable<ArgumentException>> findProblems)
        : IValidateOptions<TOptions>
        where TOptions : class
    {
        public ValidateOptionsResult Validate(string? optionsName, TOptions options)
        {
            if (optionsName != name)
            {
                return ValidateOptionsResult.Skip;
            }

            List<string> failures = [.. findProblems(options).Select(Describe)];
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }

        // "'db': MaxSize must be at least 1 (it is 0)." An exception's Message adds the parameter and the value on
        // lines of their own, which a list of failures cannot show.
        private string Describe(ArgumentException problem)
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
