using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0007: a scope in <c>await using</c> form that is disposed without the body saying it finished: a
/// <c>TaskScope</c> that starts a child and reaches the end of its block (or a <c>return</c>, a <c>break</c>) on some
/// path of the function's control flow graph without <c>JoinAsync</c>, or an <c>AsyncExitStack</c> that enters a
/// context manager (or pushes an exit) and reaches the end on some path without <c>Complete()</c> or <c>PopAll()</c>.
/// </summary>
/// <remarks>
/// Paths that leave by an exception are not reported: abandonment is what the library does then, on purpose. A scope
/// handed on (passed to a method, stored, returned) counts as finished there.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0007ScopeNotFinished : DiagnosticAnalyzer
{
    /// <summary>The property naming the call the code fix adds: "JoinAsync" or "Complete".</summary>
    public const string CallProperty = "Call";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.ScopeNotFinished,
        "Finish a scope in await-using form",
        "{0}",
        Rules.Usage,
        "'await using' cannot tell DisposeAsync whether the block completed, so the library treats a scope disposed " +
        "without a word from the body as abandoned. A TaskScope disposed before JoinAsync cancels its children and " +
        "reports their failures as unobserved; an AsyncExitStack disposed without Complete() gives every exit a " +
        "ScopeAbandonedException, so a transaction rolls back. End the block with 'await scope.JoinAsync()' or " +
        "'stack.Complete()', or use the delegate form (TaskScope.RunAsync, AsyncExitStack.RunAsync).");

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
            if (known.TaskScope is null || known.AsyncExitStack is null)
            {
                return;
            }

            start.RegisterOperationBlockAction(block =>
            {
                foreach (var body in block.OperationBlocks)
                {
                    // The graph is built only where a scope declared with `using` is given work.
                    if (body.Kind is OperationKind.MethodBody or OperationKind.ConstructorBody or OperationKind.Block
                        && body.Descendants().Any(candidate => GivesWork(candidate, known, block.CancellationToken)))
                    {
                        var graph = block.GetControlFlowGraph(body);
                        foreach (var function in FunctionGraphs.Nested(graph, block.CancellationToken).Prepend(graph))
                        {
                            Analyze(function, known, block.ReportDiagnostic, block.CancellationToken);
                        }
                    }
                }
            });
        });
    }

    /// <summary>Follows each scope of one graph declared with <c>await using</c> from every call that gives it work.</summary>
    private static void Analyze(ControlFlowGraph graph, KnownTypes known, Action<Diagnostic> report, CancellationToken cancellationToken)
    {
        Dictionary<CaptureId, IOperation>? captures = null;
        foreach (var block in graph.Blocks)
        {
            for (var index = 0; index < block.Operations.Length; index++)
            {
                if (FunctionGraphs.AssignedLocal(graph, block, index, ref captures) is not var (local, value)
                    || OwnershipFlow.Strip(value) is not IObjectCreationOperation { Type: var type }
                    || !FunctionGraphs.DeclaredWithUsing(local, cancellationToken)
                    || local.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) is not VariableDeclaratorSyntax variable)
                {
                    continue;
                }

                if (KnownTypes.Is(type, known.TaskScope) && Unfinished(graph, local, Starts, Joins, cancellationToken))
                {
                    Report(report, variable, "JoinAsync",
                        $"'{local.Name}' starts children but reaches the end of its block without 'await {local.Name}.JoinAsync()' on some path: disposal cancels them and nobody sees their failures");
                }
                else if (KnownTypes.Is(type, known.AsyncExitStack) && Unfinished(graph, local, Enters, Completes, cancellationToken))
                {
                    Report(report, variable, "Complete",
                        $"'{local.Name}' enters context managers but reaches the end of its block without '{local.Name}.Complete()' on some path: every exit sees a ScopeAbandonedException, as if the block had failed");
                }
            }
        }
    }

    private static bool GivesWork(IOperation operation, KnownTypes known, CancellationToken cancellationToken) =>
        operation is IInvocationOperation { Instance: ILocalReferenceOperation { Local: var local }, TargetMethod.Name: var name }
        && ((KnownTypes.Is(local.Type, known.TaskScope) && Starts(name)) || (KnownTypes.Is(local.Type, known.AsyncExitStack) && Enters(name)))
        && FunctionGraphs.DeclaredWithUsing(local, cancellationToken);

    private static bool Starts(string member) => member == "Start";

    private static bool Joins(string member) => member == "JoinAsync";

    private static bool Enters(string member) => member is "EnterAsync" or "PushExit";

    private static bool Completes(string member) => member is "Complete" or "PopAll";

    /// <summary>
    /// True when a path goes from a call that gives the scope work to a way out that is not an exception, without a
    /// call that finishes it or handing it on. The library's own internal methods may finish it.
    /// </summary>
    private static bool Unfinished(ControlFlowGraph graph, ILocalSymbol scope, Func<string, bool> gives, Func<string, bool> finishes, CancellationToken cancellationToken)
    {
        foreach (var block in graph.Blocks)
        {
            for (var index = 0; index < block.Operations.Length; index++)
            {
                var givesWork = block.Operations[index].DescendantsAndSelf().Any(operation =>
                    operation is IInvocationOperation { Instance: ILocalReferenceOperation { Local: var receiver } } call
                    && SymbolEqualityComparer.Default.Equals(receiver, scope)
                    && gives(call.TargetMethod.Name));
                if (givesWork && OwnershipFlow.Find(
                    graph, block, index, scope,
                    invocation => finishes(invocation.TargetMethod.Name) || invocation.TargetMethod.DeclaredAccessibility != Accessibility.Public,
                    cancellationToken, ExceptionPaths.Handlers) is not null)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static void Report(Action<Diagnostic> report, VariableDeclaratorSyntax variable, string call, string message)
    {
        var properties = ImmutableDictionary<string, string?>.Empty.Add(CallProperty, call);
        report(Diagnostic.Create(Rule, variable.Identifier.GetLocation(), properties, message));
    }
}
