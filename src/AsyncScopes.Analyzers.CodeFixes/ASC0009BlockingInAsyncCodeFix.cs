using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Simplification;
using static Microsoft.CodeAnalysis.CSharp.SyntaxFactory;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0009's fix: <c>task.Result</c>, <c>task.Wait()</c> and <c>task.GetAwaiter().GetResult()</c> become
/// <c>await task</c>; <c>semaphore.Wait(...)</c> becomes <c>await semaphore.WaitAsync(...)</c> with the same arguments.
/// <c>Thread.Sleep(n)</c> becomes <c>await Task.Delay(n)</c>. A task's <c>Wait</c> with a timeout, <c>Task.WaitAll</c> and <c>WaitOne</c>
/// get no fix: nothing awaits the same way.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ASC0009BlockingInAsyncCodeFix))]
[Shared]
public sealed class ASC0009BlockingInAsyncCodeFix : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.BlockingInAsyncCode);

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
            diagnostic.Properties.TryGetValue(ASC0009BlockingInAsyncCode.FixProperty, out var fix);
            var node = root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true);
            if (node.FirstAncestorOrSelf<QueryExpressionSyntax>() is not null)
            {
                continue; // await is not allowed in a query expression
            }

            var awaited = (fix, node) switch
            {
                ("await", _) when FixSyntax.BlockedTask(node) is { } task => task,
                ("WaitAsync", InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax wait } invocation) =>
                    invocation.WithExpression(wait.WithName(IdentifierName("WaitAsync"))),
                // Task.Delay's parameters have other names than Thread.Sleep's: the argument goes without its name.
                ("Delay", InvocationExpressionSyntax sleep) =>
                    sleep.WithExpression(ParseExpression("System.Threading.Tasks.Task.Delay").WithAdditionalAnnotations(Simplifier.Annotation))
                        .WithArgumentList(sleep.ArgumentList.WithArguments(SeparatedList(sleep.ArgumentList.Arguments.Select(argument => argument.WithNameColon(null))))),
                _ => null,
            };
            if (awaited is null)
            {
                continue;
            }

            var replaced = root.ReplaceNode(node, FixSyntax.InPlaceOf(node, FixSyntax.Await(awaited, FixSyntax.UsesConfigureAwait(root))));
            context.RegisterCodeFix(
                CodeAction.Create(fix switch { "await" => "Await the task", "Delay" => "Await Task.Delay", _ => "Await WaitAsync" }, _ => Task.FromResult(context.Document.WithSyntaxRoot(replaced)), nameof(ASC0009BlockingInAsyncCodeFix)),
                diagnostic);
        }
    }
}
