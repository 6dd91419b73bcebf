using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Formatting;
using static Microsoft.CodeAnalysis.CSharp.SyntaxFactory;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0007's fix: the scope's block ends with <c>await scope.JoinAsync();</c> (a TaskScope) or
/// <c>stack.Complete();</c> (an AsyncExitStack), before a final <c>return</c> if there is one.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0007ScopeNotFinishedFix))]
[Shared]
public sealed class ASC0007ScopeNotFinishedFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.ScopeNotFinished);

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
            if (root.FindToken(diagnostic.Location.SourceSpan.Start).Parent is not VariableDeclaratorSyntax variable
                || !diagnostic.Properties.TryGetValue(ASC0007ScopeNotFinished.CallProperty, out var call))
            {
                continue;
            }

            var name = IdentifierName(variable.Identifier.ValueText);
            ExpressionSyntax finish = call == "JoinAsync"
                ? FixSyntax.Await(InvocationExpression(MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, name, IdentifierName("JoinAsync"))), FixSyntax.UsesConfigureAwait(root))
                : InvocationExpression(MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, name, IdentifierName("Complete")));
            var statement = ExpressionStatement(finish).WithAdditionalAnnotations(Formatter.Annotation);

            BlockSyntax? block = variable.Parent?.Parent switch
            {
                UsingStatementSyntax { Statement: BlockSyntax body } => body,
                LocalDeclarationStatementSyntax { Parent: BlockSyntax enclosing } => enclosing,
                _ => null,
            };
            if (block is null)
            {
                continue;
            }

            var replaced = root.ReplaceNode(block, block.WithStatements(FixSyntax.AppendBeforeFinalReturn(block.Statements, statement)));
            var title = call == "JoinAsync" ? $"End the block with 'await {name}.JoinAsync()'" : $"End the block with '{name}.Complete()'";
            context.RegisterCodeFix(
                CodeAction.Create(title, _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0007ScopeNotFinishedFix)),
                diagnostic);
        }
    }
}
