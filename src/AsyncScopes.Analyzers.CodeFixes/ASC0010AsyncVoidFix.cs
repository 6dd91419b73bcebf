using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Simplification;
using static Microsoft.CodeAnalysis.CSharp.SyntaxFactory;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0010's fix, for an <c>async void</c> method or local function whose signature is its own (it overrides and
/// implements nothing): it returns <c>Task</c>. Its callers then get a task to await; a lambda gets no fix (what takes
/// it decides its type).
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0010AsyncVoidFix))]
[Shared]
public sealed class ASC0010AsyncVoidFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.AsyncVoid);

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
            if (!diagnostic.Properties.ContainsKey(ASC0010AsyncVoid.ReturnTaskProperty))
            {
                continue;
            }

            var function = root.FindToken(diagnostic.Location.SourceSpan.Start).Parent;
            var task = ParseTypeName("System.Threading.Tasks.Task").WithAdditionalAnnotations(Simplifier.Annotation);
            SyntaxNode? replacement = function switch
            {
                MethodDeclarationSyntax method => method.WithReturnType(task.WithTriviaFrom(method.ReturnType)),
                LocalFunctionStatementSyntax local => local.WithReturnType(task.WithTriviaFrom(local.ReturnType)),
                _ => null,
            };
            if (replacement is null)
            {
                continue;
            }

            var replaced = root.ReplaceNode(function!, replacement);
            context.RegisterCodeFix(
                CodeAction.Create("Return Task", _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0010AsyncVoidFix)),
                diagnostic);
        }
    }
}
