using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0008: a <c>PoolLease&lt;T&gt;</c> (from <c>RentAsync</c> or <c>TryRent</c>), <c>TaskScope</c>, <c>AsyncExitStack</c>
/// or <c>WorkQueue&lt;T&gt;</c> created in a function, kept in a local and not disposed on every path of the function's
/// control flow graph, or dropped at once.
/// </summary>
/// <remarks>
/// Disposed means <c>DisposeAsync</c>, or what ends the object as well: <c>JoinAsync</c> for a scope,
/// <c>ExitAsync</c> for a stack, <c>CompleteAsync</c> for a queue; or a <c>using</c>. Handing the object on (returning
/// it, storing it, passing it, capturing it in a lambda, calling one of the library's internal methods on it) moves
/// the duty to dispose it. Paths are those the code writes, <c>throw</c> included (into the <c>catch</c> of its
/// <c>try</c>, or out); an exception a call or an await may throw is not followed (ASC0013 judges those for the
/// resources it tracks). A <c>TryRent</c> lease exists only where the call returned true.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0008ScopeNotDisposed : DiagnosticAnalyzer
{
    /// <summary>The property, present and "true", when the code fix may turn the declaration into an <c>await using</c>.</summary>
    public const string AwaitUsingProperty = "AwaitUsing";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.ScopeNotDisposed,
        "Dispose leases, scopes and work queues on every path",
        "The {0} created here {1}",
        Rules.Reliability,
        "A lease that is not returned keeps its pool item until the garbage collector finds it; a TaskScope or work " +
        "queue that is not disposed leaves its tasks running with nobody to wait for them; an exit stack that is not " +
        "disposed never runs its exits. Declare it with 'await using', or dispose it on every path.");

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
            if (known.TaskScope is null || known.AsyncExitStack is null || known.WorkQueue is null || known.AsyncPool is null)
            {
                return;
            }

            start.RegisterOperationAction(operation => AnalyzeDropped(operation, known), OperationKind.ObjectCreation, OperationKind.Await, OperationKind.Invocation);
            start.RegisterOperationBlockAction(block =>
            {
                foreach (var body in block.OperationBlocks)
                {
                    // The graph is built only where a created object is kept in a local that no `using` disposes.
                    if (body.Kind is OperationKind.MethodBody or OperationKind.ConstructorBody or OperationKind.Block
                        && body.Descendants().Any(candidate => KeptInLocal(candidate, known)))
                    {
                        var graph = block.GetControlFlowGraph(body);
                        var model = body.SemanticModel!;
                        foreach (var function in FunctionGraphs.Nested(graph, block.CancellationToken).Prepend(graph))
                        {
                            AnalyzeLocals(function, model, known, block.ReportDiagnostic, block.CancellationToken);
                        }
                    }
                }
            });
        });
    }

    /// <summary>True when <paramref name="operation"/> creates an object and gives it to a local not declared with <c>using</c>.</summary>
    private static bool KeptInLocal(IOperation operation, KnownTypes known)
    {
        if (Creates(operation, known) is not { } created)
        {
            return false;
        }

        if (created.Kind == CreatedKind.TryRent)
        {
            return ((IInvocationOperation)operation).Arguments.Any(argument => argument.Parameter?.RefKind == RefKind.Out && argument.Value is not IDiscardOperation);
        }

        var outer = operation;
        while (outer.Parent is IConversionOperation)
        {
            outer = outer.Parent;
        }

        return outer.Parent switch
        {
            IVariableInitializerOperation { Parent: IVariableDeclaratorOperation { Parent: IVariableDeclarationOperation { Parent: IVariableDeclarationGroupOperation { Parent: var holder } } } } =>
                holder is not (IUsingDeclarationOperation or IUsingOperation),
            ISimpleAssignmentOperation { Target: ILocalReferenceOperation } => true,
            _ => false,
        };
    }

    /// <summary>True when calling <paramref name="member"/> ends the object as disposing it would.</summary>
    private static bool Ends(CreatedKind kind, string member) => member switch
    {
        "DisposeAsync" or "Dispose" or "ConfigureAwait" => true,
        "JoinAsync" => kind == CreatedKind.TaskScope,
        "ExitAsync" => kind == CreatedKind.ExitStack,
        "CompleteAsync" => kind == CreatedKind.WorkQueue,
        _ => false,
    };

    /// <summary>An object created and not kept: a statement of its own, a discard, a member used on the spot, a <c>TryRent</c> into <c>out _</c>.</summary>
    private static void AnalyzeDropped(OperationAnalysisContext context, KnownTypes known)
    {
        var creation = context.Operation;
        if (Creates(creation, known) is not { } created)
        {
            return;
        }

        if (created.Kind == CreatedKind.TryRent)
        {
            // Dropped when a lease may be there: the result decides a branch, or nobody looks at it. Passed on
            // (Assert.False(pool.TryRent(out _))), the result says no lease is expected.
            var invocation = (IInvocationOperation)creation;
            if (invocation.Arguments.Any(argument => argument.Parameter?.RefKind == RefKind.Out && argument.Value is IDiscardOperation)
                && (invocation.Parent is IExpressionStatementOperation || (invocation.Parent is IConditionalOperation branch && branch.Condition == invocation)))
            {
                ReportDropped(context, creation, created);
            }

            return;
        }

        var outer = creation;
        while (outer.Parent is IConversionOperation)
        {
            outer = outer.Parent;
        }

        var dropped = outer.Parent switch
        {
            // An expression-bodied lambda's statement is implicit: `Assert.Throws(() => new TaskScope(bad))`.
            IExpressionStatementOperation statement => !statement.IsImplicit,
            ISimpleAssignmentOperation { Target: IDiscardOperation } discard => discard.Value == outer,
            IInvocationOperation call => call.Instance == outer && !Ends(created.Kind, call.TargetMethod.Name),
            IPropertyReferenceOperation property => property.Instance == outer,
            _ => false,
        };
        if (dropped)
        {
            ReportDropped(context, creation, created);
        }
    }

    private static void ReportDropped(OperationAnalysisContext context, IOperation creation, Created created)
    {
        // A lambda whose only statement creates and drops the object is the idiom of a test that construction throws.
        if (Regions.ListedStatement(creation.Syntax) is { Parent: BlockSyntax { Statements.Count: 1, Parent: AnonymousFunctionExpressionSyntax } })
        {
            return;
        }

        context.ReportDiagnostic(Diagnostic.Create(Rule, creation.Syntax.GetLocation(), created.Name, "is dropped without being disposed"));
    }

    /// <summary>Follows each local of one graph given a created object (<c>x = new TaskScope()</c>, <c>if (pool.TryRent(out var lease))</c>).</summary>
    private static void AnalyzeLocals(ControlFlowGraph graph, SemanticModel model, KnownTypes known, Action<Diagnostic> report, CancellationToken cancellationToken)
    {
        HashSet<ILocalSymbol>? captured = null;
        Dictionary<CaptureId, IOperation>? capturedValues = null;
        bool Followed(ILocalSymbol local) =>
            !local.IsRef
            && !FunctionGraphs.DeclaredWithUsing(local, cancellationToken)
            && !FunctionGraphs.DeclaredOutside(local, graph, cancellationToken)
            && !(captured ??= FunctionGraphs.CapturedLocals(graph.OriginalOperation.Syntax, model, cancellationToken)).Contains(local);

        foreach (var block in graph.Blocks)
        {
            for (var index = 0; index < block.Operations.Length; index++)
            {
                if (FunctionGraphs.AssignedLocal(graph, block, index, ref capturedValues) is not var (local, assigned))
                {
                    continue;
                }

                var value = OwnershipFlow.Strip(assigned);
                if (Creates(value, known) is { Kind: not CreatedKind.TryRent } created && Followed(local))
                {
                    Track(graph, block, index, local, value, created, model, report, cancellationToken);
                }
            }

            // TryRent: a lease exists only when it returned true.
            if (FunctionGraphs.Branch(block) is var (condition, whenTrue)
                && Creates(condition, known) is { Kind: CreatedKind.TryRent } rented
                && ((IInvocationOperation)condition).Arguments.FirstOrDefault(argument => argument.Parameter?.RefKind == RefKind.Out) is { } lease
                && (lease.Value is IDeclarationExpressionOperation declaration ? declaration.Expression : lease.Value) is ILocalReferenceOperation { Local: var leaseLocal }
                && Followed(leaseLocal))
            {
                Track(graph, whenTrue, -1, leaseLocal, condition, rented, model, report, cancellationToken);
            }
        }
    }

    private static void Track(ControlFlowGraph graph, BasicBlock block, int index, ILocalSymbol local, IOperation creation, Created created, SemanticModel model, Action<Diagnostic> report, CancellationToken cancellationToken)
    {
        // The library's own internal methods may end it; an extension method receives it as an argument, which hands it on.
        bool Release(IInvocationOperation invocation) => Ends(created.Kind, invocation.TargetMethod.Name) || invocation.TargetMethod.DeclaredAccessibility != Accessibility.Public;
        if (OwnershipFlow.Find(graph, block, index, local, Release, cancellationToken, ExceptionPaths.Throw) is null)
        {
            return;
        }

        var properties = ImmutableDictionary<string, string?>.Empty;
        if (created.Kind != CreatedKind.TryRent
            && creation.Syntax.Parent is EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax { Parent: VariableDeclarationSyntax { Parent: LocalDeclarationStatementSyntax statement } } }
            && Functions.CanAwaitAt(statement)
            && OnlyUsedAsReceiver(local, Regions.FromStatement(statement).Skip(1), model, cancellationToken))
        {
            properties = properties.Add(AwaitUsingProperty, "true");
        }

        report(Diagnostic.Create(Rule, creation.Syntax.GetLocation(), properties, created.Name, "is not disposed on every path: declare it with 'await using'"));
    }

    private static bool OnlyUsedAsReceiver(ILocalSymbol local, IEnumerable<StatementSyntax> statements, SemanticModel model, CancellationToken cancellationToken) =>
        statements.All(statement => Regions.References(statement, local, model, cancellationToken)
            .All(reference => Regions.AccessedMember(reference) is not null && !Regions.IsInNestedFunction(reference, statement)));

    private static Created? Creates(IOperation operation, KnownTypes known)
    {
        switch (operation)
        {
            case IObjectCreationOperation { Type: var type }:
                return KnownTypes.Is(type, known.TaskScope) ? new Created(CreatedKind.TaskScope, "TaskScope")
                    : KnownTypes.Is(type, known.AsyncExitStack) ? new Created(CreatedKind.ExitStack, "AsyncExitStack")
                    : KnownTypes.Is(type, known.WorkQueue) ? new Created(CreatedKind.WorkQueue, "WorkQueue")
                    : null;
            case IAwaitOperation { Operation: var awaited }:
                awaited = OwnershipFlow.Strip(awaited);
                if (awaited is IInvocationOperation { TargetMethod.Name: "ConfigureAwait", Instance: { } configured })
                {
                    awaited = OwnershipFlow.Strip(configured);
                }

                return awaited is IInvocationOperation { TargetMethod: { Name: "RentAsync" } rent } && KnownTypes.Is(rent.ContainingType, known.AsyncPool)
                    ? new Created(CreatedKind.Lease, "pool lease")
                    : null;
            case IInvocationOperation { TargetMethod: var method }:
                return method.Name == "TryRent" && KnownTypes.Is(method.ContainingType, known.AsyncPool) ? new Created(CreatedKind.TryRent, "pool lease")
                    : method.Name == "PopAll" && KnownTypes.Is(method.ContainingType, known.AsyncExitStack) ? new Created(CreatedKind.ExitStack, "AsyncExitStack")
                    : null;
            default:
                return null;
        }
    }

    private enum CreatedKind
    {
        Lease,
        TryRent,
        TaskScope,
        ExitStack,
        WorkQueue,
    }

    private sealed class Created
    {
        public Created(CreatedKind kind, string name)
        {
            Kind = kind;
            Name = name;
        }

        public CreatedKind Kind { get; }

        public string Name { get; }
    }
}
