using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0008's fix, for a local that is only used through its members: its declaration becomes <c>await using</c>, so
/// that it is disposed on every path out of its block.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0008ScopeNotDisposedFix))]
[Shared]
public sealed class ASC0008ScopeNotDisposedFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.ScopeNotDisposed);

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
            if (!diagnostic.Properties.ContainsKey(ASC0008ScopeNotDisposed.AwaitUsingProperty)
                || root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true).FirstAncestorOrSelf<LocalDeclarationStatementSyntax>() is not { } declaration)
            {
                continue;
            }

            var replaced = root.ReplaceNode(declaration, FixSyntax.AwaitUsing(declaration));
            context.RegisterCodeFix(
                CodeAction.Create("Declare it with 'await using'", _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0008ScopeNotDisposedFix)),
                diagnostic);
        }
    }
}
