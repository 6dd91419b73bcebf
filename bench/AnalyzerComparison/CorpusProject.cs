using System.Xml.Linq;

namespace AnalyzerComparison;

/// <summary>
/// The project that compiles the corpus: a library on the same references as the rule tests (the runtime,
/// AsyncScopes, the dependency injection and hosting abstractions), outside the repository's build settings, with
/// one analyzer package at a time (<c>-p:Tool=</c>). Every package but ours gets every rule on, as warnings.
/// </summary>
internal static class CorpusProject
{
    public static void Write(string directory, string repo)
    {
        // Stop the repository's Directory.Build.props and central package versions from reaching the corpus.
        File.WriteAllText(Path.Combine(directory, "Directory.Build.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(directory, "Directory.Packages.props"), "<Project />\n");
        File.WriteAllText(Path.Combine(directory, "all-rules.globalconfig"), "is_global = true\ndotnet_analyzer_diagnostic.severity = warning\n");

        var versions = XDocument.Load(Path.Combine(repo, "Directory.Packages.props")).Descendants("PackageVersion")
            .ToDictionary(element => (string)element.Attribute("Include")!, element => (string)element.Attribute("Version")!);
        var project = new XElement("Project", new XAttribute("Sdk", "Microsoft.NET.Sdk"),
            new XElement("PropertyGroup",
                new XElement("TargetFramework", "net10.0"),
                new XElement("Nullable", "enable"),
                new XElement("ImplicitUsings", "disable"),
                new XElement("LangVersion", "latest"),
                new XElement("EnableNETAnalyzers", "false"),
                new XElement("ManagePackageVersionsCentrally", "false")),
            new XElement("PropertyGroup", new XAttribute("Condition", $"'$(Tool)' == '{Tool.NetAnalyzers}'"),
                new XElement("EnableNETAnalyzers", "true"),
                new XElement("AnalysisMode", "All")),
            new XElement("ItemGroup", new XAttribute("Condition", $"'$(Tool)' != '{Tool.Ours}'"),
                new XElement("GlobalAnalyzerConfigFiles", new XAttribute("Include", "all-rules.globalconfig"))),
            new XElement("ItemGroup",
                new XElement("ProjectReference", new XAttribute("Include", Path.Combine(repo, "src", "AsyncScopes", "AsyncScopes.csproj"))),
                Package("Microsoft.Extensions.DependencyInjection.Abstractions", versions["Microsoft.Extensions.DependencyInjection.Abstractions"]),
                Package("Microsoft.Extensions.Hosting.Abstractions", versions["Microsoft.Extensions.Hosting.Abstractions"])),
            new XElement("ItemGroup", new XAttribute("Condition", $"'$(Tool)' == '{Tool.Ours}'"),
                new XElement("ProjectReference",
                    new XAttribute("Include", Path.Combine(repo, "src", "AsyncScopes.Analyzers", "AsyncScopes.Analyzers.csproj")),
                    new XAttribute("OutputItemType", "Analyzer"),
                    new XAttribute("ReferenceOutputAssembly", "false"))),
            Tool.All.Where(tool => tool.Package.Length > 0).Select(tool =>
                new XElement("ItemGroup", new XAttribute("Condition", $"'$(Tool)' == '{tool.Name}'"),
                    Package(tool.Package, tool.Version, privateAssets: true))));
        project.Save(Path.Combine(directory, "Corpus.csproj"));
    }

    private static XElement Package(string name, string version, bool privateAssets = false)
    {
        var element = new XElement("PackageReference", new XAttribute("Include", name), new XAttribute("Version", version));
        if (privateAssets)
        {
            element.Add(new XAttribute("PrivateAssets", "all"));
        }

        return element;
    }
}
