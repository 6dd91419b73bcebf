using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0012's fix, in code that can await: <c>x.DisposeAsync();</c> and <c>_ = x.DisposeAsync();</c> become
/// <c>await x.DisposeAsync();</c>. Elsewhere the disposal has to move to where it can be awaited: no fix.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0012DisposeAsyncNotAwaitedFix))]
[Shared]
public sealed class ASC0012DisposeAsyncNotAwaitedFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.DisposeAsyncNotAwaited);

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
            if (!diagnostic.Properties.ContainsKey(ASC0012DisposeAsyncNotAwaited.CanAwaitProperty)
                || root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) is not InvocationExpressionSyntax call)
            {
                continue;
            }

            var statement = call.Parent switch
            {
                ExpressionStatementSyntax dropped => dropped,
                AssignmentExpressionSyntax { Parent: ExpressionStatementSyntax discarded } => discarded,
                _ => null,
            };
            if (statement is null)
            {
                continue;
            }

            var awaited = FixSyntax.Await(call, FixSyntax.UsesConfigureAwait(root)).WithTriviaFrom(statement.Expression);
            var replaced = root.ReplaceNode(statement, statement.WithExpression(awaited));
            context.RegisterCodeFix(
                CodeAction.Create("Await DisposeAsync", _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0012DisposeAsyncNotAwaitedFix)),
                diagnostic);
        }
    }
}
