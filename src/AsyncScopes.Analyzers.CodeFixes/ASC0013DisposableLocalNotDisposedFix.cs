using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0013's fix, for a local only used through its members: its declaration becomes <c>await using</c> (in code that
/// can await, for a local declared async-disposable) or <c>using</c>, and the disposal the analyzer names (the last
/// statement of the block) goes, since the declaration now disposes it there on every path.
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
            int? remove = diagnostic.Properties.TryGetValue(ASC0013DisposableLocalNotDisposed.RemoveProperty, out var position)
                && int.TryParse(position, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var start) ? start : null;
            context.RegisterCodeFix(
                CodeAction.Create(
                    awaitUsing ? "Declare it with 'await using'" : "Declare it with 'using'",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(Fix(root, block, declaration, awaitUsing, remove))),
                    nameof(ASC0013DisposableLocalNotDisposedFix) + kind),
                diagnostic);
        }
    }

    private static SyntaxNode Fix(SyntaxNode root, BlockSyntax block, LocalDeclarationStatementSyntax declaration, bool awaitUsing, int? remove)
    {
        // The analyzer names the disposal statement to drop by where it starts: the one that was the block's last.
        var final = remove is { } start ? block.Statements.FirstOrDefault(statement => statement.SpanStart == start) : null;
        var annotation = new SyntaxAnnotation();
        var marked = final is null ? block : block.ReplaceNode(final, final.WithAdditionalAnnotations(annotation));
        var fixedBlock = marked.ReplaceNode(
            marked.Statements.First(statement => statement.IsEquivalentTo(declaration)),
            awaitUsing ? FixSyntax.AwaitUsing(declaration) : FixSyntax.Using(declaration));
        if (fixedBlock.GetAnnotatedNodes(annotation).FirstOrDefault() is { } removed)
        {
            fixedBlock = fixedBlock.RemoveNode(removed, SyntaxRemoveOptions.KeepNoTrivia)!;
        }

        return root.ReplaceNode(block, fixedBlock);
    }
}
