using System.Collections.Immutable;
using AsyncScopes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace AsyncScopes.Analyzers.Tests;

/// <summary>
/// Runs an analyzer, and a code fix, over test code compiled against the running .NET runtime and the AsyncScopes
/// library. Markup: <c>[|code|]</c> is where the analyzer must report, and nowhere else.
/// </summary>
internal static class Verify<TAnalyzer>
    where TAnalyzer : DiagnosticAnalyzer, new()
{
    public static Task DiagnosticsAsync(string source, params DiagnosticResult[] expected)
    {
        var test = new CSharpAnalyzerTest<TAnalyzer, DefaultVerifier> { TestCode = source };
        References.Configure(test.TestState, test);
        test.ExpectedDiagnostics.AddRange(expected);
        return test.RunAsync();
    }

    /// <summary>No diagnostic at all: the source must hold no markup.</summary>
    public static Task NoDiagnosticsAsync(string source) => DiagnosticsAsync(source);

    public static DiagnosticResult Diagnostic() => CSharpAnalyzerVerifier<TAnalyzer, DefaultVerifier>.Diagnostic();
}

/// <summary>Runs an analyzer and its code fix: the diagnostics of <c>source</c>, then the exact text the fix produces.</summary>
internal static class Verify<TAnalyzer, TCodeFix>
    where TAnalyzer : DiagnosticAnalyzer, new()
    where TCodeFix : CodeFixProvider, new()
{
    public static Task FixAsync(string source, string fixedSource)
    {
        var test = new CSharpCodeFixTest<TAnalyzer, TCodeFix, DefaultVerifier>
        {
            TestCode = source,
            FixedCode = fixedSource,
        };
        References.Configure(test.TestState, test);
        References.Configure(test.FixedState, test);
        return test.RunAsync();
    }

    /// <summary>The analyzer reports (as marked) but the fix offers nothing: the source stays as it is.</summary>
    public static Task NoFixAsync(string source)
    {
        var test = new CSharpCodeFixTest<TAnalyzer, TCodeFix, DefaultVerifier>
        {
            TestCode = source,
            FixedCode = source,
        };
        References.Configure(test.TestState, test);
        return test.RunAsync();
    }
}

/// <summary>
/// The metadata the test code compiles against: the assemblies of the runtime these tests run on (they are on every
/// machine that runs the tests, so nothing is downloaded), the AsyncScopes library, and the dependency injection
/// abstractions (hosted services create their scopes with them), and the hosting abstractions (<c>IHostedService</c>, <c>BackgroundService</c>).
/// </summary>
internal static class References
{
    private static readonly ImmutableArray<MetadataReference> All = Load();

    public static void Configure(SolutionState state, AnalyzerTest<DefaultVerifier> test)
    {
        test.ReferenceAssemblies = new ReferenceAssemblies("net10.0");
        state.AdditionalReferences.AddRange(All);
    }

    private static ImmutableArray<MetadataReference> Load()
    {
        var runtimeDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var runtime = Directory.EnumerateFiles(runtimeDirectory, "*.dll")
            .Where(IsManagedAssembly)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path));
        return runtime
            .Append(MetadataReference.CreateFromFile(typeof(TaskScope).Assembly.Location))
            .Append(MetadataReference.CreateFromFile(typeof(Microsoft.Extensions.DependencyInjection.AsyncServiceScope).Assembly.Location))
            .Append(MetadataReference.CreateFromFile(typeof(Microsoft.Extensions.Hosting.IHostedService).Assembly.Location))
            .ToImmutableArray();
    }

    private static bool IsManagedAssembly(string path)
    {
        try
        {
            System.Reflection.AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException)
        {
            return false;
        }
    }
}
