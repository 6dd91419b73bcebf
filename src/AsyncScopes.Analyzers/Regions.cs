using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>Where a local declared or assigned by a statement lives: that statement and the ones after it in its block.</summary>
internal static class Regions
{
    /// <summary>The statements from <paramref name="statement"/> to the end of its block, switch section or top-level program.</summary>
    public static IReadOnlyList<StatementSyntax> FromStatement(StatementSyntax statement)
    {
        switch (statement.Parent)
        {
            case BlockSyntax block:
                return block.Statements.Skip(block.Statements.IndexOf(statement)).ToList();
            case SwitchSectionSyntax section:
                return section.Statements.Skip(section.Statements.IndexOf(statement)).ToList();
            case GlobalStatementSyntax global when global.Parent is CompilationUnitSyntax unit:
                return unit.Members.SkipWhile(member => member != global).OfType<GlobalStatementSyntax>().Select(member => member.Statement).ToList();
            default:
                return new[] { statement };
        }
    }

    /// <summary>The statement around <paramref name="node"/> that sits directly in a block, switch section or top-level program.</summary>
    public static StatementSyntax? ListedStatement(SyntaxNode node)
    {
        for (var current = node; current is not null; current = current.Parent)
        {
            if (Functions.IsFunction(current))
            {
                return null;
            }

            if (current is StatementSyntax statement && statement.Parent is BlockSyntax or SwitchSectionSyntax or GlobalStatementSyntax)
            {
                return statement;
            }
        }

        return null;
    }

    /// <summary>True when <paramref name="node"/> sits in a lambda, anonymous method or local function inside <paramref name="root"/>.</summary>
    public static bool IsInNestedFunction(SyntaxNode node, SyntaxNode root)
    {
        for (var current = node.Parent; current is not null && current != root; current = current.Parent)
        {
            if (Functions.IsFunction(current))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The identifiers under <paramref name="root"/> that refer to <paramref name="local"/>.</summary>
    public static IEnumerable<IdentifierNameSyntax> References(SyntaxNode root, ILocalSymbol local, SemanticModel model, CancellationToken cancellationToken) =>
        root.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>().Where(identifier =>
            identifier.Identifier.ValueText == local.Name
            && SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(identifier, cancellationToken).Symbol, local));

    /// <summary>The name of the member accessed on <paramref name="identifier"/> (<c>x.Name</c> or <c>x?.Name</c>), or null.</summary>
    public static string? AccessedMember(IdentifierNameSyntax identifier) => identifier.Parent switch
    {
        MemberAccessExpressionSyntax access when access.Expression == identifier => access.Name.Identifier.ValueText,
        ConditionalAccessExpressionSyntax conditional when conditional.Expression == identifier => conditional.WhenNotNull switch
        {
            InvocationExpressionSyntax { Expression: MemberBindingExpressionSyntax binding } => binding.Name.Identifier.ValueText,
            MemberBindingExpressionSyntax binding => binding.Name.Identifier.ValueText,
            _ => null,
        },
        _ => null,
    };
}
