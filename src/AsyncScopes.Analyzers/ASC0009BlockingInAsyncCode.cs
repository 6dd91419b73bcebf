using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0009: code that can await blocks its thread instead: <c>.Result</c>, <c>.Wait()</c>,
/// <c>GetAwaiter().GetResult()</c> or <c>Task.WaitAll</c> on a task that may not have completed,
/// <c>SemaphoreSlim.Wait</c>, <c>WaitHandle.WaitOne</c>, <c>Thread.Sleep</c>.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0009BlockingInAsyncCode : DiagnosticAnalyzer
{
    /// <summary>The property of a diagnostic that says what the fix writes: <c>await</c> (the task),
    /// <c>WaitAsync</c> (the semaphore), <c>Delay</c> (<c>await Task.Delay</c> for <c>Thread.Sleep</c>), or nothing
    /// (no mechanical fix).</summary>
    internal const string FixProperty = "Fix";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.BlockingInAsyncCode,
        "Do not block in async code",
        "'{0}' blocks the thread in async code: {1}",
        Rules.Reliability,
        "An async method, local function or lambda that blocks on a task or a wait (.Result, .Wait(), " +
        "GetAwaiter().GetResult(), Task.WaitAll, SemaphoreSlim.Wait, WaitHandle.WaitOne, Thread.Sleep) holds a thread-pool thread " +
        "for as long as the wait lasts, and deadlocks where the awaited work needs that thread or the caller's " +
        "context. It can await instead. Not reported: a task known to have completed (awaited earlier in the " +
        "function, or under an IsCompleted check), a wait that cannot block (SemaphoreSlim.Wait(0), Thread.Sleep(0)), code inside a " +
        "lock, and cleanup, which ASC0002 covers.");

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
            if (known.Task is null)
            {
                return;
            }

            start.RegisterSyntaxNodeAction(
                node => Analyze(node, known),
                SyntaxKind.MethodDeclaration,
                SyntaxKind.LocalFunctionStatement,
                SyntaxKind.ParenthesizedLambdaExpression,
                SyntaxKind.SimpleLambdaExpression,
                SyntaxKind.AnonymousMethodExpression);
        });
    }

    private static void Analyze(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        // Blocking in cleanup is ASC0002's, which says what to do there.
        if (!Functions.IsAsync(context.Node) || Functions.Body(context.Node) is not { } body
            || Functions.Cleanup(context.Node, context.SemanticModel, known, context.CancellationToken) is not null)
        {
            return;
        }

        foreach (var node in Functions.OwnNodes(body))
        {
            if (!Functions.CanAwaitAt(node))
            {
                continue; // in a lock: it cannot await there
            }

            if (ASC0002BlockingInCleanup.BlockingCall(node, context.SemanticModel, known, context.CancellationToken) is { } task)
            {
                if (ASC0002BlockingInCleanup.IsKnownCompleted(node, task, context.SemanticModel, context.CancellationToken)
                    || WasAwaitedBefore(node, task, body, context.SemanticModel, context.CancellationToken)
                    || IsCompletedByConstruction(task, context.SemanticModel, context.CancellationToken))
                {
                    continue;
                }

                if (Functions.HasAsyncTwin(node))
                {
                    continue; // the synchronous branch of code written to run either way
                }

                var fix = IsPlainTaskWait(node) ? "await" : null;
                Report(context, node, fix, "await the task instead");
            }
            else if (IsSleep(node, context.SemanticModel, context.CancellationToken) && !Functions.IsOnSynchronousPath(node))
            {
                Report(context, node, "Delay", "await Task.Delay instead");
            }
            else if (WaitCall(node, context.SemanticModel, known, context.CancellationToken) is { } wait && !Functions.HasAsyncTwin(node))
            {
                var onSemaphore = KnownTypes.Is(wait.ContainingType, known.SemaphoreSlim);
                Report(
                    context,
                    node,
                    onSemaphore ? "WaitAsync" : null,
                    onSemaphore ? "await WaitAsync instead" : "wait asynchronously (a SemaphoreSlim or a TaskCompletionSource in place of the wait handle)");
            }
        }
    }

    private static void Report(SyntaxNodeAnalysisContext context, SyntaxNode node, string? fix, string advice)
    {
        var properties = ImmutableDictionary<string, string?>.Empty.Add(FixProperty, fix);
        context.ReportDiagnostic(Diagnostic.Create(Rule, node.GetLocation(), properties, node.ToString(), advice));
    }

    // .Result, .Wait() with no argument, and GetAwaiter().GetResult() become an await of the same task; a Wait with a
    // timeout (which returns false instead of throwing) and Task.WaitAll have no fix of the same meaning.
    private static bool IsPlainTaskWait(SyntaxNode node) => node switch
    {
        MemberAccessExpressionSyntax => true,
        InvocationExpressionSyntax { ArgumentList.Arguments.Count: 0, Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Wait" or "GetResult" } } => true,
        _ => false,
    };

    /// <summary>
    /// A task that has completed by the way it was obtained: the result of an <c>await</c> (of <c>Task.WhenAny</c>, a
    /// <c>Task&lt;Task&gt;</c>), a local initialized so, or the task a <c>ContinueWith</c> continuation is given.
    /// </summary>
    private static bool IsCompletedByConstruction(ExpressionSyntax task, SemanticModel model, CancellationToken cancellationToken)
    {
        while (task is ParenthesizedExpressionSyntax parenthesized)
        {
            task = parenthesized.Expression;
        }

        if (task is AwaitExpressionSyntax)
        {
            return true;
        }

        switch (model.GetSymbolInfo(task, cancellationToken).Symbol)
        {
            case ILocalSymbol local:
                return local.DeclaringSyntaxReferences.Any(reference =>
                    reference.GetSyntax(cancellationToken) is VariableDeclaratorSyntax { Initializer.Value: AwaitExpressionSyntax });
            case IParameterSymbol parameter:
                return parameter.ContainingSymbol is IMethodSymbol { MethodKind: MethodKind.AnonymousFunction }
                    && parameter.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken)
                        .FirstAncestorOrSelf<AnonymousFunctionExpressionSyntax>()?.Parent is ArgumentSyntax
                        {
                            Parent.Parent: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "ContinueWith" } },
                        };
            default:
                return false;
        }
    }

    /// <summary><c>Thread.Sleep</c> for some time (<c>Sleep(0)</c> only gives up the rest of the time slice).</summary>
    private static bool IsSleep(SyntaxNode node, SemanticModel model, CancellationToken cancellationToken) =>
        node is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Sleep" }, ArgumentList.Arguments.Count: 1 } invocation
        && model.GetSymbolInfo(invocation, cancellationToken).Symbol is IMethodSymbol { ContainingType: { Name: "Thread", ContainingNamespace: { Name: "Threading", ContainingNamespace.Name: "System" } } }
        && invocation.ArgumentList.Arguments[0].Expression is var duration
        && model.GetConstantValue(duration, cancellationToken) is not { HasValue: true, Value: 0 }
        && duration is not MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Zero" };

    /// <summary><c>SemaphoreSlim.Wait</c> (but <c>Wait(0)</c>, which does not block) or a <c>WaitHandle</c>'s
    /// <c>WaitOne</c>: the method called, or null.</summary>
    private static IMethodSymbol? WaitCall(SyntaxNode node, SemanticModel model, KnownTypes known, CancellationToken cancellationToken)
    {
        if (node is not InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Wait" or "WaitOne" } } invocation
            || model.GetSymbolInfo(invocation, cancellationToken).Symbol is not IMethodSymbol method)
        {
            return null;
        }

        // A wait of no time (0, TimeSpan.Zero) only tries: it never blocks.
        var first = invocation.ArgumentList.Arguments.FirstOrDefault()?.Expression;
        if (first is not null && (model.GetConstantValue(first, cancellationToken) is { HasValue: true, Value: 0 }
            || first is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Zero", Expression: IdentifierNameSyntax { Identifier.ValueText: "TimeSpan" } }))
        {
            return null;
        }

        if (method.Name == "Wait" && KnownTypes.Is(method.ContainingType, known.SemaphoreSlim))
        {
            return method;
        }

        return method.Name == "WaitOne" && known.WaitHandle is not null
            && (KnownTypes.Is(method.ContainingType, known.WaitHandle) || KnownTypes.InheritsFrom(method.ContainingType, known.WaitHandle))
            ? method
            : null;
    }

    /// <summary>True when an <c>await</c> earlier in the function awaited <paramref name="task"/> (itself, or among the
    /// arguments of <c>Task.WhenAll</c>): it has completed by then.</summary>
    private static bool WasAwaitedBefore(SyntaxNode node, ExpressionSyntax task, SyntaxNode body, SemanticModel model, CancellationToken cancellationToken)
    {
        // tasks[0] and d["a"] after await Task.WhenAll(tasks) or (d.Values); t in foreach (var t in tasks) after it.
        var root = task is ElementAccessExpressionSyntax element ? element.Expression : task;
        var symbol = model.GetSymbolInfo(root, cancellationToken).Symbol;
        if (symbol is ILocalSymbol loopVariable
            && loopVariable.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) is ForEachStatementSyntax loop)
        {
            symbol = model.GetSymbolInfo(loop.Expression is MemberAccessExpressionSyntax member ? member.Expression : loop.Expression, cancellationToken).Symbol;
        }

        if (symbol is not (ILocalSymbol or IParameterSymbol or IFieldSymbol))
        {
            return false;
        }

        return Functions.OwnNodes(body).OfType<AwaitExpressionSyntax>()
            .Where(awaited => awaited.SpanStart < node.SpanStart)
            .Any(awaited => awaited.Expression.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>().Any(name =>
                SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(name, cancellationToken).Symbol, symbol)));
    }
}
