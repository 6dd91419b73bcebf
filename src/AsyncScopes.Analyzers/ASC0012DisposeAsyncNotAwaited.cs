using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0012: a <c>DisposeAsync()</c> whose task is dropped (a statement of its own, <c>_ =</c>, <c>.AsTask()</c> dropped,
/// the body of a lambda that returns nothing): nobody waits for the disposal, and what it throws is lost.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0012DisposeAsyncNotAwaited : DiagnosticAnalyzer
{
    /// <summary>The property of a diagnostic where the fix may write <c>await</c>: present in code that can await.</summary>
    internal const string CanAwaitProperty = "CanAwait";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.DisposeAsyncNotAwaited,
        "Await DisposeAsync",
        "'{0}' is not awaited: {1}",
        Rules.Reliability,
        "A DisposeAsync whose task is dropped leaves the object being disposed while the code goes on as if it were " +
        "closed (the connection still open, the file still being flushed), and what the disposal throws is lost. Await " +
        "it, or dispose where it can be awaited ('await using'). Not reported: async cleanup, which ASC0003 covers, and " +
        "objects whose DisposeAsync does no asynchronous work.");

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Rule);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var known = KnownTypes.From(start.Compilation);
            if (known.IAsyncDisposable is null)
            {
                return;
            }

            start.RegisterSyntaxNodeAction(node => Analyze(node, known), SyntaxKind.InvocationExpression);
        });
    }

    private static void Analyze(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var call = (InvocationExpressionSyntax)context.Node;
        if (call is not { ArgumentList.Arguments.Count: 0 }
            || call.Expression is not (MemberAccessExpressionSyntax { Name.Identifier.ValueText: "DisposeAsync" } or IdentifierNameSyntax { Identifier.ValueText: "DisposeAsync" })
            || context.SemanticModel.GetSymbolInfo(call, context.CancellationToken).Symbol is not IMethodSymbol { Parameters.Length: 0 } method
            || !known.IsTaskLike(method.ReturnType))
        {
            return;
        }

        var receiver = call.Expression is MemberAccessExpressionSyntax access
            ? context.SemanticModel.GetTypeInfo(access.Expression, context.CancellationToken).Type
            : method.ContainingType;
        if (!AsyncDisposal.DoesAsyncWork(receiver, known) || !IsDropped(call, context.SemanticModel, context.CancellationToken))
        {
            return;
        }

        var function = Functions.Enclosing(call);
        if (function is not null && Functions.Cleanup(function, context.SemanticModel, known, context.CancellationToken) == CleanupKind.Asynchronous)
        {
            return; // ASC0003's
        }

        var canAwait = Functions.CanAwaitAt(call);
        var properties = canAwait ? ImmutableDictionary<string, string?>.Empty.Add(CanAwaitProperty, "await") : ImmutableDictionary<string, string?>.Empty;
        var advice = canAwait
            ? "the object is still being disposed when the code goes on, and what the disposal throws is lost; await it"
            : "the object is still being disposed when this returns, and what the disposal throws is lost; dispose it where the disposal can be awaited (await using, or an IAsyncDisposable owner)";
        context.ReportDiagnostic(Diagnostic.Create(Rule, call.GetLocation(), properties, call.ToString(), advice));
    }

    // The task goes nowhere: a statement, a discard, .AsTask() or .Preserve() that goes nowhere, or the body of a
    // lambda whose delegate returns nothing.
    private static bool IsDropped(InvocationExpressionSyntax call, SemanticModel model, CancellationToken cancellationToken)
    {
        ExpressionSyntax task = call;
        while (task.Parent is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "AsTask" or "Preserve" } converted
            && converted.Parent is InvocationExpressionSyntax conversion)
        {
            task = conversion;
        }

        return task.Parent switch
        {
            ExpressionStatementSyntax => true,
            AssignmentExpressionSyntax { Left: IdentifierNameSyntax { Identifier.ValueText: "_" } } => true,
            AnonymousFunctionExpressionSyntax lambda => model.GetSymbolInfo(lambda, cancellationToken).Symbol is IMethodSymbol { ReturnsVoid: true },
            _ => false,
        };
    }
}
