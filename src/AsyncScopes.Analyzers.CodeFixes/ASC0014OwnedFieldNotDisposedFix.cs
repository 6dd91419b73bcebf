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
/// ASC0014's fix for a field replaced in a loop: disposes the object the field holds in a statement before the
/// assignment, <c>_socket?.Dispose();</c>, or, where the assignment can await and the type is async-disposable,
/// <c>if (_connection != null) { await _connection.DisposeAsync(); }</c> (written so for every language version). The other findings of the rule (a class
/// that must become disposable, a disposal that forgets a field) have no single mechanical fix.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0014OwnedFieldNotDisposedFix))]
[Shared]
public sealed class ASC0014OwnedFieldNotDisposedFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.OwnedFieldNotDisposed);

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
            if (!diagnostic.Properties.TryGetValue(ASC0014OwnedFieldNotDisposed.DisposeOldProperty, out var disposal)
                || root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) is not AssignmentExpressionSyntax { Parent: ExpressionStatementSyntax { Parent: BlockSyntax block } statement } assignment)
            {
                continue;
            }

            var field = assignment.Left.WithoutTrivia();
            StatementSyntax dispose = disposal == "await"
                ? IfStatement(
                    BinaryExpression(SyntaxKind.NotEqualsExpression, field, LiteralExpression(SyntaxKind.NullLiteralExpression)),
                    Block(ExpressionStatement(FixSyntax.Await(
                        InvocationExpression(MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, field, IdentifierName("DisposeAsync"))),
                        FixSyntax.UsesConfigureAwait(root)))))
                : ExpressionStatement(ConditionalAccessExpression(field, InvocationExpression(MemberBindingExpression(IdentifierName("Dispose")))));
            dispose = dispose.WithLeadingTrivia(statement.GetLeadingTrivia()).WithAdditionalAnnotations(Formatter.Annotation);
            var index = block.Statements.IndexOf(statement);
            var statements = block.Statements
                .Replace(statement, statement.WithLeadingTrivia(statement.GetLeadingTrivia().Where(trivia => trivia.IsKind(SyntaxKind.WhitespaceTrivia))))
                .Insert(index, dispose);
            var replaced = root.ReplaceNode(block, block.WithStatements(statements));
            context.RegisterCodeFix(
                CodeAction.Create("Dispose the old object before replacing it", _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0014OwnedFieldNotDisposedFix)),
                diagnostic);
        }
    }
}
