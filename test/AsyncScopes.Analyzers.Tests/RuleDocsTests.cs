using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers.Tests;

/// <summary>Every rule links to its own page, and the page is there.</summary>
public sealed class RuleDocsTests
{
    public static TheoryData<string> Analyzers() =>
        [.. typeof(Rules).Assembly.GetTypes()
            .Where(type => typeof(DiagnosticAnalyzer).IsAssignableFrom(type) && !type.IsAbstract)
            .Select(type => type.Name)];

    [Theory]
    [MemberData(nameof(Analyzers))]
    public void Each_rule_links_to_its_page_in_docs_rules_and_the_page_is_about_it(string analyzer)
    {
        var type = typeof(Rules).Assembly.GetTypes().Single(candidate => candidate.Name == analyzer);
        var instance = (DiagnosticAnalyzer)Activator.CreateInstance(type)!;

        Assert.All(instance.SupportedDiagnostics, rule =>
        {
            Assert.Equal($"docs/rules/{rule.Id}.md", rule.HelpLinkUri);
            string page = Path.Combine(RepositoryRoot(), rule.HelpLinkUri);
            Assert.True(File.Exists(page), $"{rule.Id} links to {rule.HelpLinkUri}, which is missing.");
            Assert.StartsWith($"# {rule.Id}", File.ReadLines(page).First(), StringComparison.Ordinal);
        });
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "AsyncScopes.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository's root (AsyncScopes.slnx) is not above the tests.");
    }
}
