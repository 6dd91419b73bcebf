using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AnalyzerComparison;

/// <summary>One test of a rule as a case: its code, and whether the test says the code is wrong.</summary>
internal sealed record Case(string Id, string Rule, string Test, bool Buggy, string Source);

/// <summary>
/// The corpus is the code of the rule tests in <c>test/AsyncScopes.Analyzers.Tests</c>: each test that expects
/// diagnostics (marked in its code, or listed after it) is a bug, each test that expects none is correct code. Code-fix tests repeat those and are left out. The sources are the tests' constant strings, read
/// with the compiler, with the test markup (<c>[|...|]</c>, <c>{|#0:...|}</c>) taken out.
/// </summary>
internal static partial class Corpus
{
    public static (List<Case> Cases, List<string> Skipped) Extract(string testsDirectory)
    {
        var files = Directory.GetFiles(testsDirectory, "ASC*Tests.cs").Order(StringComparer.Ordinal).ToList();
        var trees = files.Select(file => CSharpSyntaxTree.ParseText(File.ReadAllText(file), path: file)).ToList();
        var compilation = CSharpCompilation.Create("RuleTests", trees, [MetadataReference.CreateFromFile(typeof(object).Assembly.Location)]);
        var cases = new List<Case>();
        var skipped = new List<string>();
        foreach (var tree in trees)
        {
            var rule = Path.GetFileName(tree.FilePath)[..7];
            var model = compilation.GetSemanticModel(tree);
            var number = 0;
            foreach (var method in tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>())
            {
                foreach (var call in method.DescendantNodes().OfType<InvocationExpressionSyntax>())
                {
                    if (call.Expression is not MemberAccessExpressionSyntax { Expression: IdentifierNameSyntax { Identifier.ValueText: "VerifyCS" }, Name.Identifier.ValueText: var verb }
                        || verb is not ("DiagnosticsAsync" or "NoDiagnosticsAsync")
                        || model.GetConstantValue(call.ArgumentList.Arguments[0].Expression) is not { HasValue: true, Value: string source })
                    {
                        continue;
                    }

                    var id = $"{rule}_{++number:D2}";
                    var test = method.Identifier.ValueText;
                    if (Prepare(source, id) is { } prepared)
                    {
                        var expectsDiagnostics = call.ArgumentList.Arguments.Count > 1
                            || source.Contains("[|", StringComparison.Ordinal) || source.Contains("{|", StringComparison.Ordinal);
                        cases.Add(new Case(id, rule, test, expectsDiagnostics, prepared));
                    }
                    else
                    {
                        skipped.Add($"{rule}.{test}");
                    }
                }
            }
        }

        return (cases, skipped);
    }

    /// <summary>
    /// The cases written from the other packages' own documentation (<c>bench/AnalyzerComparison/FromTheirDocs</c>):
    /// each file's first line says <c>// bug:</c> or <c>// correct:</c> and which rule documents the pattern.
    /// </summary>
    public static List<Case> FromTheirDocs(string directory) =>
        Directory.GetFiles(directory, "*.cs").Order(StringComparer.Ordinal).Select(file =>
        {
            var source = File.ReadAllText(file);
            var id = "Docs_" + Path.GetFileNameWithoutExtension(file);
            var label = source[..source.IndexOf('\n', StringComparison.Ordinal)].TrimStart('/', ' ');
            return new Case(id, "docs", label, label.StartsWith("bug:", StringComparison.Ordinal),
                Prepare(source, id) ?? throw new InvalidOperationException(file + " declares a namespace or top-level statements"));
        }).ToList();

    /// <summary>The test's code without markup, in a namespace of its own; null when it declares namespaces or top-level statements itself.</summary>
    private static string? Prepare(string source, string id)
    {
        var code = Markup().Replace(source, string.Empty).Replace("|}", string.Empty, StringComparison.Ordinal)
            .Replace("[|", string.Empty, StringComparison.Ordinal).Replace("|]", string.Empty, StringComparison.Ordinal);
        var unit = CSharpSyntaxTree.ParseText(code).GetCompilationUnitRoot();
        if (unit.Members.Any(member => member is BaseNamespaceDeclarationSyntax or GlobalStatementSyntax))
        {
            return null;
        }

        var at = unit.AttributeLists.Count > 0 ? unit.AttributeLists[^1].FullSpan.End
            : unit.Usings.Count > 0 ? unit.Usings[^1].FullSpan.End
            : 0;
        return $"{code[..at]}namespace Corpus.{id};\n\n{code[at..]}";
    }

    [GeneratedRegex(@"\{\|[^:|{}]*:")]
    private static partial Regex Markup();
}
