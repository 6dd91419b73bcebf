using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Microsoft.CodeAnalysis.CSharp.SyntaxFactory;

namespace AsyncScopes.Analyzers;

/// <summary>ASC0001's fix: <c>using</c> becomes <c>await using</c>; <c>x.Dispose();</c> becomes
/// <c>await x.DisposeAsync();</c>, and <c>x?.Dispose();</c> becomes <c>await (x?.DisposeAsync() ?? default);</c>, which
/// evaluates <c>x</c> once and awaits nothing when it is null.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0001SyncDisposalInAsyncCodeFix))]
[Shared]
public sealed class ASC0001SyncDisposalInAsyncCodeFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.SyncDisposalInAsyncCode);

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
            if (diagnostic.Properties.ContainsKey(ASC0001SyncDisposalInAsyncCode.NoFixProperty))
            {
                continue;
            }

            var node = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);
            var replacement = Replacement(node, out var target);
            if (replacement is null || target is null)
            {
                continue;
            }

            var title = target is ExpressionStatementSyntax ? "Use 'await DisposeAsync()'" : "Use 'await using'";
            context.RegisterCodeFix(
                CodeAction.Create(title, _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(target, replacement))), nameof(ASC0001SyncDisposalInAsyncCodeFix)),
                diagnostic);
        }
    }

    private static SyntaxNode? Replacement(SyntaxNode node, out SyntaxNode? target)
    {
        target = null;
        foreach (var ancestor in node.AncestorsAndSelf())
        {
            switch (ancestor)
            {
                case UsingStatementSyntax usingStatement:
                    target = usingStatement;
                    return usingStatement
                        .WithAwaitKeyword(Token(usingStatement.UsingKeyword.LeadingTrivia, SyntaxKind.AwaitKeyword, TriviaList(Space)))
                        .WithUsingKeyword(usingStatement.UsingKeyword.WithLeadingTrivia());
                case LocalDeclarationStatementSyntax declaration when declaration.UsingKeyword.IsKind(SyntaxKind.UsingKeyword):
                    target = declaration;
                    return declaration
                        .WithAwaitKeyword(Token(declaration.UsingKeyword.LeadingTrivia, SyntaxKind.AwaitKeyword, TriviaList(Space)))
                        .WithUsingKeyword(declaration.UsingKeyword.WithLeadingTrivia());
                case ExpressionStatementSyntax { Expression: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax access } } statement:
                    target = statement;
                    var disposeAsync = InvocationExpression(access.WithName(IdentifierName("DisposeAsync")));
                    return statement.WithExpression(AwaitExpression(disposeAsync).WithTriviaFrom(statement.Expression));
                case ExpressionStatementSyntax
                {
                    Expression: ConditionalAccessExpressionSyntax { WhenNotNull: InvocationExpressionSyntax { Expression: MemberBindingExpressionSyntax binding } } conditional,
                } statement:
                    target = statement;
                    var maybeDisposeAsync = conditional.WithWhenNotNull(InvocationExpression(binding.WithName(IdentifierName("DisposeAsync"))));
                    var orCompleted = BinaryExpression(
                        SyntaxKind.CoalesceExpression,
                        maybeDisposeAsync.WithoutTrivia(),
                        LiteralExpression(SyntaxKind.DefaultLiteralExpression, Token(SyntaxKind.DefaultKeyword)));
                    return statement.WithExpression(
                        AwaitExpression(ParenthesizedExpression(orCompleted)).WithTriviaFrom(statement.Expression));
                case StatementSyntax:
                    return null;
            }
        }

        return null;
    }
}
