using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;

namespace AsyncScopes.Hosting;

/// <summary>
/// Creates named options from what the registration of that name gave in code, not from a parameterless constructor:
/// the options types have init-only properties, so code cannot change an instance after it is made, and the
/// configuration binder (which can set them) then overrides the settings its section has.
/// </summary>
internal sealed class NamedOptionsFactory<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>(
    IServiceProvider services,
    IEnumerable<OptionsSource<TOptions>> sources,
    IEnumerable<IConfigureOptions<TOptions>> setups,
    IEnumerable<IPostConfigureOptions<TOptions>> postConfigures,
    IEnumerable<IValidateOptions<TOptions>> validations)
    : OptionsFactory<TOptions>(setups, postConfigures, validations)
    where TOptions : class
{
    protected override TOptions CreateInstance(string name) =>
        sources.LastOrDefault(source => source.Name == name) is { } source
            ? source.Create(services)
            : base.CreateInstance(name);
}

/// <summary>The code-given options of one registration.</summary>
internal sealed record OptionsSource<TOptions>(string Name, Func<IServiceProvider, TOptions> Create);
