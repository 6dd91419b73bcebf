using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0002: cleanup (a <c>Dispose</c>, a finalizer, a <c>DisposeAsync</c>, an <c>ExitAsync</c> or an exit given to the
/// library) blocks on a task with <c>.Result</c>, <c>.Wait()</c>, <c>Task.WaitAll</c> or
/// <c>GetAwaiter().GetResult()</c>.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0002BlockingInCleanup : DiagnosticAnalyzer
{
    /// <summary>The property ("await" or "implement") that tells the code fix whether the cleanup can await.</summary>
    public const string CanAwaitProperty = "CanAwait";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.BlockingInCleanup,
        "Do not block on a task in cleanup",
        "'{0}' blocks on a task in {1}: {2}",
        Rules.Reliability,
        "Blocking on a task during cleanup holds a thread until the task ends, deadlocks under a synchronization " +
        "context, and runs on the finalizer thread when it is a finalizer. Cleanup that has asynchronous work to wait " +
        "for belongs in DisposeAsync: implement IAsyncDisposable and await the task there.");

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
                SyntaxKind.DestructorDeclaration,
                SyntaxKind.ParenthesizedLambdaExpression,
                SyntaxKind.SimpleLambdaExpression,
                SyntaxKind.AnonymousMethodExpression);
        });
    }

    private static void Analyze(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        if (Functions.Cleanup(context.Node, context.SemanticModel, known, context.CancellationToken) is not { } kind
            || Functions.Body(context.Node) is not { } body)
        {
            return;
        }

        var cleanupName = CleanupName(context.Node);
        var advice = kind != CleanupKind.Synchronous ? "await the task instead"
            : AlreadyAsyncDisposable(context.Node, context.SemanticModel, known, context.CancellationToken)
                ? "the type already has DisposeAsync: let Dispose release without waiting what it can, and leave the asynchronous work to DisposeAsync"
                : "implement IAsyncDisposable and await the task in DisposeAsync";
        var properties = ImmutableDictionary<string, string?>.Empty.Add(CanAwaitProperty, kind == CleanupKind.Asynchronous && Functions.IsAsync(context.Node) ? "await" : "implement");

        foreach (var node in Functions.OwnNodes(body))
        {
            var blocked = BlockingCall(node, context.SemanticModel, known, context.CancellationToken);
            if (blocked is null || IsKnownCompleted(node, blocked, context.SemanticModel, context.CancellationToken) || Functions.IsOnSynchronousPath(node))
            {
                continue;
            }

            context.ReportDiagnostic(Diagnostic.Create(Rule, node.GetLocation(), properties, node.ToString(), $"'{cleanupName}'", advice));
        }

        if (kind == CleanupKind.Synchronous && IsFirstCleanup(context.Node, context.SemanticModel, context.CancellationToken))
        {
            ReportReachedThroughCalls(context, body, cleanupName, advice, known);
        }
    }

    /// <summary>
    /// The one synchronous cleanup of a type that reports what its calls reach, so that a call reached from several is
    /// reported once: <c>Dispose()</c>; else <c>Dispose(bool)</c>; else the finalizer. The walk from it follows
    /// <c>Dispose(bool)</c> too.
    /// </summary>
    private static bool IsFirstCleanup(SyntaxNode function, SemanticModel model, CancellationToken cancellationToken)
    {
        if (model.GetDeclaredSymbol(function, cancellationToken) is not IMethodSymbol method)
        {
            return false;
        }

        var disposes = method.ContainingType.GetMembers("Dispose").OfType<IMethodSymbol>().ToList();
        return method.MethodKind == MethodKind.Destructor ? disposes.Count == 0
            : method.Parameters.Length == 0 || !disposes.Any(dispose => dispose.Parameters.Length == 0);
    }

    /// <summary>
    /// A synchronous cleanup that blocks through a method of its own type it calls (<c>Dispose()</c> calls <c>Stop()</c>,
    /// which waits): each blocking call of those methods (and of the methods they call in the type, declared in this
    /// file), reported where it blocks, naming the cleanup that reaches it. Not fixed: the method may have other callers.
    /// </summary>
    private static void ReportReachedThroughCalls(SyntaxNodeAnalysisContext context, SyntaxNode body, string cleanupName, string advice, KnownTypes known)
    {
        var model = context.SemanticModel;
        var type = model.GetEnclosingSymbol(body.SpanStart, context.CancellationToken)?.ContainingType;
        var seen = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        var pending = new Stack<SyntaxNode>();
        pending.Push(body);
        while (pending.Count > 0)
        {
            foreach (var call in Functions.OwnNodes(pending.Pop()).OfType<InvocationExpressionSyntax>())
            {
                if (model.GetSymbolInfo(call, context.CancellationToken).Symbol is not IMethodSymbol { IsAsync: false } callee
                    || !SymbolEqualityComparer.Default.Equals(callee.ContainingType?.OriginalDefinition, type?.OriginalDefinition)
                    || (callee.Name is "Dispose" && callee.Parameters.Length == 0) || callee.Name is "DisposeAsync" or "DisposeAsyncCore"
                    || !seen.Add(callee.OriginalDefinition))
                {
                    continue;
                }

                foreach (var reference in callee.OriginalDefinition.DeclaringSyntaxReferences.Where(reference => reference.SyntaxTree == model.SyntaxTree))
                {
                    if (Functions.Body(reference.GetSyntax(context.CancellationToken)) is not { } calleeBody)
                    {
                        continue;
                    }

                    pending.Push(calleeBody);
                    if (callee.Name == "Dispose")
                    {
                        continue; // Dispose(bool) is cleanup itself, reported as such; only what it calls is followed
                    }

                    foreach (var node in Functions.OwnNodes(calleeBody))
                    {
                        if (BlockingCall(node, model, known, context.CancellationToken) is { } blocked
                            && !IsKnownCompleted(node, blocked, model, context.CancellationToken) && !Functions.IsOnSynchronousPath(node))
                        {
                            context.ReportDiagnostic(Diagnostic.Create(Rule, node.GetLocation(), node.ToString(), $"'{callee.Name}', which '{cleanupName}' calls", advice));
                        }
                    }
                }
            }
        }
    }

    private static bool AlreadyAsyncDisposable(SyntaxNode function, SemanticModel model, KnownTypes known, CancellationToken cancellationToken) =>
        model.GetDeclaredSymbol(function, cancellationToken) is IMethodSymbol { ContainingType: { } type }
        && KnownTypes.Implements(type, known.IAsyncDisposable);

    /// <summary>The task expression that <paramref name="node"/> blocks on, or null when it does not block.</summary>
    internal static ExpressionSyntax? BlockingCall(SyntaxNode node, SemanticModel model, KnownTypes known, CancellationToken cancellationToken)
    {
        switch (node)
        {
            case MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Result" } access
                when access.Parent is not InvocationExpressionSyntax
                && model.GetSymbolInfo(access, cancellationToken).Symbol is IPropertySymbol property
                && known.IsTaskLike(property.ContainingType):
                return access.Expression;
            case InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax access } invocation:
                var name = access.Name.Identifier.ValueText;
                if (name is not ("Wait" or "WaitAll" or "GetResult")
                    || model.GetSymbolInfo(invocation, cancellationToken).Symbol is not IMethodSymbol method)
                {
                    return null;
                }

                if (name == "GetResult")
                {
                    return access.Expression is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "GetAwaiter" } awaiter }
                        && method.ContainingType.Name.EndsWith("Awaiter", StringComparison.Ordinal)
                        && method.ContainingNamespace.ToDisplayString() == "System.Runtime.CompilerServices"
                        ? awaiter.Expression
                        : null;
                }

                return known.IsTaskLike(method.ContainingType) ? access.Expression : null;
            default:
                return null;
        }
    }

    /// <summary>
    /// True when the blocking call sits under a check that the task has already completed
    /// (<c>if (task.IsCompleted)</c>, <c>task.IsCompletedSuccessfully ? task.Result : ...</c>): it does not block then.
    /// </summary>
    internal static bool IsKnownCompleted(SyntaxNode node, ExpressionSyntax task, SemanticModel model, CancellationToken cancellationToken)
    {
        if (AsksForSynchronousIO(task, model, cancellationToken))
        {
            return true;
        }

        var taskSymbol = model.GetSymbolInfo(task, cancellationToken).Symbol;
        if (taskSymbol is null)
        {
            return false;
        }

        for (SyntaxNode? child = node, current = node.Parent; current is not null; child = current, current = current.Parent)
        {
            var condition = current switch
            {
                IfStatementSyntax ifStatement when ifStatement.Statement == child => ifStatement.Condition,
                ConditionalExpressionSyntax conditional when conditional.WhenTrue == child => conditional.Condition,
                BinaryExpressionSyntax binary when binary.IsKind(SyntaxKind.LogicalAndExpression) && binary.Right == child => binary.Left,
                _ => null,
            };

            if (condition is not null && ChecksCompletion(condition, taskSymbol, model, cancellationToken))
            {
                return true;
            }

            // if (!task.IsCompleted) { throw ...; } before it in the same block.
            if (current is BlockSyntax block && child is StatementSyntax statement
                && block.Statements.TakeWhile(previous => previous != statement).OfType<IfStatementSyntax>().Any(guard =>
                    ChecksCompletion(guard.Condition, taskSymbol, model, cancellationToken) && EndsInJump(guard.Statement)))
            {
                return true;
            }

            if (Functions.IsFunction(current))
            {
                return false;
            }
        }

        return false;
    }

    /// <summary>
    /// A call of code written to run either way told to run synchronously, whose task is complete when it returns:
    /// an argument that is an enum member named <c>Synchronous</c> (MySqlConnector's <c>IOBehavior.Synchronous</c>), or
    /// <c>false</c> for a parameter named <c>async</c>, <c>isAsync</c> or <c>useAsync</c> (Npgsql's <c>async: false</c>).
    /// </summary>
    internal static bool AsksForSynchronousIO(ExpressionSyntax task, SemanticModel model, CancellationToken cancellationToken)
    {
        if (task is not InvocationExpressionSyntax call || model.GetOperation(call, cancellationToken) is not IInvocationOperation invocation)
        {
            return false;
        }

        return invocation.Arguments.Any(argument =>
            (argument.Value is IFieldReferenceOperation { Field: { ContainingType.TypeKind: TypeKind.Enum, Name: "Synchronous" } })
            || (argument.Parameter?.Name is { } name && Functions.IsAsyncFlagName(name) && argument.Value.ConstantValue is { HasValue: true, Value: false }));
    }

    private static bool EndsInJump(StatementSyntax statement) =>
        (statement is BlockSyntax block ? block.Statements.LastOrDefault() : statement) is ThrowStatementSyntax or ReturnStatementSyntax;

    private static bool ChecksCompletion(ExpressionSyntax condition, ISymbol task, SemanticModel model, CancellationToken cancellationToken) =>
        condition.DescendantNodesAndSelf().OfType<MemberAccessExpressionSyntax>().Any(access =>
            access.Name.Identifier.ValueText is "IsCompleted" or "IsCompletedSuccessfully" or "IsFaulted" or "IsCanceled"
            && SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(access.Expression, cancellationToken).Symbol, task));

    private static string CleanupName(SyntaxNode function) => function switch
    {
        MethodDeclarationSyntax method => method.Identifier.ValueText,
        DestructorDeclarationSyntax destructor => "~" + destructor.Identifier.ValueText,
        _ => "an exit delegate",
    };
}
