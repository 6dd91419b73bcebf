using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0002's fix, in an async <c>DisposeAsync</c> or exit: <c>task.Wait()</c>, <c>task.Result</c> and
/// <c>task.GetAwaiter().GetResult()</c> become <c>await task</c>. A synchronous <c>Dispose</c> gets no fix: moving its
/// work to a <c>DisposeAsync</c> is a design change.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0002BlockingInCleanupFix))]
[Shared]
public sealed class ASC0002BlockingInCleanupFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.BlockingInCleanup);

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
            if (!diagnostic.Properties.TryGetValue(ASC0002BlockingInCleanup.CanAwaitProperty, out var canAwait) || canAwait != "await")
            {
                continue;
            }

            var node = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);
            if (FixSyntax.BlockedTask(node) is not { } task)
            {
                continue;
            }

            var replaced = root.ReplaceNode(node, FixSyntax.InPlaceOf(node, FixSyntax.Await(task, FixSyntax.UsesConfigureAwait(root))));
            context.RegisterCodeFix(
                CodeAction.Create("Await the task", _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0002BlockingInCleanupFix)),
                diagnostic);
        }
    }
}
