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
/// ASC0006's fix, for a wait statement followed in the same block by a <c>Release();</c> statement. An awaited
/// <c>WaitAsync</c> becomes <c>using (await gate.LockAsync(...)) { ...the statements between... }</c>; a
/// <c>Wait</c> is followed by <c>try { ...the statements between... } finally { gate.Release(); }</c>.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0006SemaphoreReleaseNotInFinallyFix))]
[Shared]
public sealed class ASC0006SemaphoreReleaseNotInFinallyFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.SemaphoreReleaseNotInFinally);

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
            if (root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) is not InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax access } wait
                || wait.FirstAncestorOrSelf<ExpressionStatementSyntax>() is not { Parent: BlockSyntax block } statement)
            {
                continue;
            }

            var semaphore = access.Expression;
            var start = block.Statements.IndexOf(statement);
            var end = -1;
            for (var i = start + 1; i < block.Statements.Count; i++)
            {
                if (block.Statements[i] is ExpressionStatementSyntax { Expression: InvocationExpressionSyntax { ArgumentList.Arguments.Count: 0, Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Release" } release } }
                    && SyntaxFactory.AreEquivalent(release.Expression, semaphore))
                {
                    end = i;
                    break;
                }
            }

            if (end < 0)
            {
                continue;
            }

            var between = List(block.Statements.Skip(start + 1).Take(end - start - 1));
            var lockAsyncAvailable = model.Compilation.GetTypeByMetadataName("AsyncScopes.SemaphoreSlimExtensions") is not null;
            var awaited = access.Name.Identifier.ValueText == "WaitAsync" && statement.Expression is AwaitExpressionSyntax;
            if (awaited && !lockAsyncAvailable)
            {
                continue;
            }

            IEnumerable<StatementSyntax> replacement;
            string title;
            if (awaited)
            {
                // Keep the wait's arguments and its ConfigureAwait, with LockAsync in place of WaitAsync.
                var awaitExpression = (AwaitExpressionSyntax)statement.Expression;
                var locking = awaitExpression.ReplaceNode(access, access.WithName(IdentifierName("LockAsync")));
                replacement = new StatementSyntax[]
                {
                    UsingStatement(null, locking.WithoutTrivia(), Block(between)).WithLeadingTrivia(statement.GetLeadingTrivia()).WithAdditionalAnnotations(Formatter.Annotation),
                };
                title = "Hold the permit in 'using (await LockAsync(...))'";
            }
            else
            {
                var releaseStatement = block.Statements[end];
                replacement = new StatementSyntax[]
                {
                    statement,
                    TryStatement(Block(between), default, FinallyClause(Block(releaseStatement.WithoutLeadingTrivia()))).WithAdditionalAnnotations(Formatter.Annotation),
                };
                title = "Release in a finally";
            }

            var statements = block.Statements.Take(start).Concat(replacement).Concat(block.Statements.Skip(end + 1));
            var newRoot = root.ReplaceNode(block, block.WithStatements(List(statements)));
            if (awaited && newRoot is CompilationUnitSyntax unit && !ImportsAsyncScopes(unit, block))
            {
                newRoot = unit.AddUsings(UsingDirective(ParseName("AsyncScopes")).WithAdditionalAnnotations(Formatter.Annotation));
            }

            context.RegisterCodeFix(
                CodeAction.Create(title, _ => Task.FromResult(context.Document.WithSyntaxRoot(newRoot)), nameof(ASC0006SemaphoreReleaseNotInFinallyFix)),
                diagnostic);
        }
    }

    private static bool ImportsAsyncScopes(CompilationUnitSyntax unit, SyntaxNode node) =>
        unit.Usings.Any(directive => directive.Name?.ToString() == "AsyncScopes")
        || node.Ancestors().OfType<BaseNamespaceDeclarationSyntax>().Any(ns => ns.Name.ToString().StartsWith("AsyncScopes", StringComparison.Ordinal)
            || ns.Usings.Any(directive => directive.Name?.ToString() == "AsyncScopes"));
}
