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
/// ASC0011's fixes: a wait that is the first statement of the <c>try</c> that releases moves in front of that
/// <c>try</c>; a timed wait whose result is ignored becomes <c>if (!wait) { throw new TimeoutException(); }</c>.
/// A wait further inside the <c>try</c> gets no fix: what runs before it would move out of the <c>try</c> with it.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0011SemaphoreWaitProtocolFix))]
[Shared]
public sealed class ASC0011SemaphoreWaitProtocolFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.SemaphoreWaitProtocol);

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
            if (root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) is not InvocationExpressionSyntax wait
                || ASC0011SemaphoreWaitProtocol.ResultDiscardedIn(wait) is not { } statement)
            {
                continue;
            }

            diagnostic.Properties.TryGetValue(ASC0011SemaphoreWaitProtocol.FindingProperty, out var finding);
            var (title, replaced) = finding == ASC0011SemaphoreWaitProtocol.InsideTry
                ? ("Wait before the try", MoveBeforeTry(root, statement))
                : ("Check the wait's result", CheckResult(root, statement));
            if (replaced is null)
            {
                continue;
            }

            context.RegisterCodeFix(
                CodeAction.Create(title, _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0011SemaphoreWaitProtocolFix) + finding),
                diagnostic);
        }
    }

    private static SyntaxNode? MoveBeforeTry(SyntaxNode root, ExpressionStatementSyntax statement)
    {
        // A try with catch clauses would no longer catch what the wait throws: no fix there.
        if (statement.Parent is not BlockSyntax { Parent: TryStatementSyntax { Catches.Count: 0 } tryStatement } block || block.Statements.First() != statement)
        {
            return null;
        }

        var withoutWait = tryStatement.WithBlock(block.WithStatements(block.Statements.RemoveAt(0)));
        var moved = statement.WithLeadingTrivia(tryStatement.GetLeadingTrivia());
        return root.ReplaceNode(tryStatement, new SyntaxNode[] { moved, withoutWait.WithAdditionalAnnotations(Formatter.Annotation) });
    }

    private static SyntaxNode CheckResult(SyntaxNode root, ExpressionStatementSyntax statement)
    {
        var result = statement.Expression is AssignmentExpressionSyntax discard ? discard.Right : statement.Expression;
        var check = IfStatement(
            PrefixUnaryExpression(SyntaxKind.LogicalNotExpression, result.WithoutTrivia()),
            Block(ThrowStatement(ObjectCreationExpression(ParseTypeName("System.TimeoutException").WithAdditionalAnnotations(Microsoft.CodeAnalysis.Simplification.Simplifier.Annotation)).WithArgumentList(ArgumentList()))));
        // A blank line after the check, as after any block that is not the last statement.
        var trailing = statement.GetTrailingTrivia();
        var lineBreak = trailing.Where(trivia => trivia.IsKind(SyntaxKind.EndOfLineTrivia)).Take(1);
        return root.ReplaceNode(
            statement,
            check.WithLeadingTrivia(statement.GetLeadingTrivia()).WithTrailingTrivia(trailing.AddRange(lineBreak)).WithAdditionalAnnotations(Formatter.Annotation));
    }
}
