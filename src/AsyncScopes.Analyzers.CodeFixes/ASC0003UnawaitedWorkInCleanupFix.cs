using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0003's fix, in an async cleanup: a dropped or discarded task (<c>StopAsync();</c>, <c>_ = StopAsync();</c>)
/// is awaited instead.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0003UnawaitedWorkInCleanupFix))]
[Shared]
public sealed class ASC0003UnawaitedWorkInCleanupFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.UnawaitedWorkInCleanup);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
        {
            return;
        }

        foreach (var diagnostic in context.Diagnostics)
        {
            var node = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);
            var statement = node.FirstAncestorOrSelf<ExpressionStatementSyntax>();
            if (statement is null || !Functions.CanAwaitAt(statement))
            {
                continue;
            }

            var invocation = statement.Expression switch
            {
                InvocationExpressionSyntax started => started,
                AssignmentExpressionSyntax { Right: InvocationExpressionSyntax discarded } => discarded,
                _ => null,
            };
            if (invocation is null || model.GetSymbolInfo(invocation, context.CancellationToken).Symbol is IMethodSymbol { ReturnsVoid: true })
            {
                continue;
            }

            var awaited = FixSyntax.Await(invocation, FixSyntax.UsesConfigureAwait(root)).WithTriviaFrom(statement.Expression);
            var replaced = root.ReplaceNode(statement, statement.WithExpression(awaited));
            context.RegisterCodeFix(
                CodeAction.Create("Await the task", _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0003UnawaitedWorkInCleanupFix)),
                diagnostic);
        }
    }
}
