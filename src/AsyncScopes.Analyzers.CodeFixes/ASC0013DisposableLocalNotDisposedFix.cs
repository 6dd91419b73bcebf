using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0013's fix, for a local only used through its members: its declaration becomes <c>await using</c> (in code that
/// can await an async-disposable object) or <c>using</c>, and a disposal that was the last statement of its block goes,
/// since the declaration now disposes it there on every path.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0013DisposableLocalNotDisposedFix))]
[Shared]
public sealed class ASC0013DisposableLocalNotDisposedFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.DisposableLocalNotDisposed);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(ASC0013DisposableLocalNotDisposed.UsingProperty, out var kind)
                || root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true).FirstAncestorOrSelf<LocalDeclarationStatementSyntax>() is not { Parent: BlockSyntax block } declaration)
            {
                continue;
            }

            var awaitUsing = kind == "await using";
            context.RegisterCodeFix(
                CodeAction.Create(
                    awaitUsing ? "Declare it with 'await using'" : "Declare it with 'using'",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(Fix(root, block, declaration, awaitUsing))),
                    nameof(ASC0013DisposableLocalNotDisposedFix) + kind),
                diagnostic);
        }
    }

    private static SyntaxNode Fix(SyntaxNode root, BlockSyntax block, LocalDeclarationStatementSyntax declaration, bool awaitUsing)
    {
        var name = declaration.Declaration.Variables[0].Identifier.ValueText;
        var final = block.Statements.Where(statement => statement != declaration).Reverse().Take(2)
            .FirstOrDefault(statement => IsDisposalOf(statement, name));
        var fixedBlock = block.ReplaceNode(declaration, awaitUsing ? FixSyntax.AwaitUsing(declaration) : FixSyntax.Using(declaration));
        if (final is not null)
        {
            var removed = fixedBlock.Statements.First(statement => statement.IsEquivalentTo(final));
            fixedBlock = fixedBlock.RemoveNode(removed, SyntaxRemoveOptions.KeepNoTrivia)!;
        }

        return root.ReplaceNode(block, fixedBlock);
    }

    /// <summary><c>x.Dispose();</c>, <c>x?.Dispose();</c>, <c>await x.DisposeAsync();</c> or <c>x.Close();</c> (the analyzer
    /// offers the fix only when such a statement, if any, is the last one of the block, or the one before a final return).</summary>
    private static bool IsDisposalOf(StatementSyntax statement, string name)
    {
        if (statement is not ExpressionStatementSyntax { Expression: var expression })
        {
            return false;
        }

        if (expression is AwaitExpressionSyntax awaited)
        {
            expression = awaited.Expression;
        }

        if (expression is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Expression: IdentifierNameSyntax target } member }
            && target.Identifier.ValueText == name)
        {
            return member.Name.Identifier.ValueText is "Dispose" or "DisposeAsync" or "Close" or "Abort";
        }

        return expression is ConditionalAccessExpressionSyntax { Expression: IdentifierNameSyntax conditionalTarget, WhenNotNull: InvocationExpressionSyntax { Expression: MemberBindingExpressionSyntax binding } }
            && conditionalTarget.Identifier.ValueText == name
            && binding.Name.Identifier.ValueText is "Dispose" or "DisposeAsync" or "Close" or "Abort";
    }
}
