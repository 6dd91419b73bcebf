using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>How an owned value is lost, the first way a path through the control flow graph finds.</summary>
internal enum LeakKind
{
    /// <summary>Every path keeps it: nothing disposes it and nothing takes it.</summary>
    Never,

    /// <summary>A path leaves the function (a return, a throw) while the value is still owned.</summary>
    Exit,

    /// <summary>A path assigns the variable again (a loop that creates another) while the value is still owned.</summary>
    Overwritten,

    /// <summary>An await that nothing protects may throw while the value is still owned.</summary>
    AwaitThrows,
}

/// <summary>Which exceptions end a path: a rule that judges only the paths the code writes turns them off.</summary>
[Flags]
internal enum ExceptionPaths
{
    /// <summary>Only returns and the end of the function leave it.</summary>
    None = 0,

    /// <summary>A <c>throw</c> that no <c>catch</c> or releasing <c>finally</c> stops leaves the function.</summary>
    Throw = 1,

    /// <summary>An <c>await</c> may throw: out of the function, or into the handlers of its <c>try</c>.</summary>
    Await = 2,

    /// <summary>Any statement inside a <c>try</c> with a <c>catch</c> may throw into its handlers once it has run (a way
    /// into them only, never out): a handler starts with what the statements of its <c>try</c> had done.</summary>
    Handlers = 4,

    /// <summary>A <c>throw</c> and an <c>await</c>.</summary>
    All = Throw | Await,
}

/// <summary>A leak and the operation where it happens (the return, the assignment, the await); none for <see cref="LeakKind.Never"/>.</summary>
internal readonly struct Leak
{
    /// <summary>A leak of <paramref name="kind"/> at <paramref name="at"/>.</summary>
    public Leak(LeakKind kind, IOperation? at)
    {
        Kind = kind;
        At = at;
    }

    /// <summary>How the value is lost.</summary>
    public LeakKind Kind { get; }

    /// <summary>Where: the return or throw, the assignment, or the await; null when it is never disposed.</summary>
    public IOperation? At { get; }
}

/// <summary>
/// Follows the value a local was given through the compiler's control flow graph of its function, from the
/// assignment on: the value is owned until a path disposes it (a release the caller recognizes) or hands it on, and a
/// path that ends, loops back to assign the variable again, or reaches an unprotected <c>await</c> while it is still
/// owned is a leak.
/// </summary>
/// <remarks>
/// Handing on is anything but using the value's members: returning it, storing it anywhere, passing it as an
/// argument (a constructor that wraps it, a method that keeps it; a BCL method that only reads or writes a stream
/// lends it), converting it to a delegate, giving it a new name in a pattern. That is generous on purpose: a path the
/// analysis cannot follow is never a leak. A branch on the value being null has nothing to own on its null side
/// (<c>x?.Dispose()</c>). A <c>finally</c> that releases or hands on the value covers every path through it. The graph
/// has no edges for exceptions: an await inside a <c>try</c> with a <c>catch</c> goes on in the handlers (a leak found
/// there is that await's), and one outside any is a way out by itself.
/// </remarks>
internal sealed class OwnershipFlow
{
    private readonly ControlFlowGraph _graph;
    private readonly ILocalSymbol _local;
    private readonly Func<IInvocationOperation, bool> _isRelease;
    private readonly ExceptionPaths _exceptions;
    private readonly HashSet<CaptureId> _aliases = new();
    private readonly Dictionary<ControlFlowRegion, bool> _regionReleases = new();

    private OwnershipFlow(ControlFlowGraph graph, ILocalSymbol local, Func<IInvocationOperation, bool> isRelease, ExceptionPaths exceptions)
    {
        _graph = graph;
        _local = local;
        _isRelease = isRelease;
        _exceptions = exceptions;
        FindAliases();
    }

    private enum Use
    {
        None,
        Neutral,
        Released,
        Overwritten,
    }

    /// <summary>
    /// The first leak of the value assigned to <paramref name="local"/> by operation <paramref name="index"/> of
    /// <paramref name="block"/>, or null when every path disposes it or hands it on; <paramref name="exceptions"/> says
    /// which exceptions are paths.
    /// </summary>
    public static Leak? Find(ControlFlowGraph graph, BasicBlock block, int index, ILocalSymbol local, Func<IInvocationOperation, bool> isRelease, CancellationToken cancellationToken, ExceptionPaths exceptions = ExceptionPaths.All)
    {
        var flow = new OwnershipFlow(graph, local, isRelease, exceptions);
        var leak = flow.Search(block, index, cancellationToken);
        if (leak is { } found && found.Kind != LeakKind.AwaitThrows && !flow.EverReleased())
        {
            return new Leak(LeakKind.Never, null);
        }

        return leak;
    }

    /// <summary>Finds the first leak of each kind along the paths from the assignment, and reports the plainest: an
    /// assignment that overwrites the value, then a path out, then an await that throws.</summary>
    /// <remarks>
    /// The graph has no edges for exceptions: an await inside a <c>try</c> with a <c>catch</c> adds one to each of its
    /// handlers, and a leak found past such an edge is that await's.
    /// </remarks>
    private Leak? Search(BasicBlock start, int startIndex, CancellationToken cancellationToken)
    {
        Leak? exit = null, overwritten = null, awaitThrows = null;
        var visited = new HashSet<(int, bool)>(); // a block is walked once on normal paths and once on paths an exception opened
        var pending = new Stack<Step>();
        pending.Push(new Step(start, startIndex + 1, null));
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var step = pending.Pop();
            var block = step.Block;
            var ended = false;
            var intoHandlers = (_exceptions & ExceptionPaths.Handlers) != 0 ? Handlers(block).ToList() : null;

            for (var i = step.Index; i < block.Operations.Length && !ended; i++)
            {
                var operation = block.Operations[i];
                switch (Uses(operation))
                {
                    case Use.Released:
                        ended = true;
                        break;
                    case Use.Overwritten:
                        overwritten ??= step.LeakAt(LeakKind.Overwritten, operation);
                        ended = true;
                        break;
                    default:
                        Awaits(operation, block, step, pending, visited, ref awaitThrows);
                        if (intoHandlers is { Count: > 0 })
                        {
                            Enter(intoHandlers, step.Cause, pending, visited); // it may throw once it has run, still owned
                        }

                        break;
                }
            }

            if (ended)
            {
                continue;
            }

            if (block.BranchValue is { } branchValue)
            {
                if (IsAlias(Strip(branchValue)) || Uses(branchValue) == Use.Released)
                {
                    continue; // returned, thrown, or handed on in the condition
                }

                Awaits(branchValue, block, step, pending, visited, ref awaitThrows);
            }

            var nullWhen = NullWhen(block);
            Follow(step, block.ConditionalSuccessor, nullWhen == block.ConditionKind, pending, visited, ref exit);
            Follow(step, block.FallThroughSuccessor, nullWhen is { } isNull && isNull != block.ConditionKind, pending, visited, ref exit);
        }

        return overwritten ?? exit ?? awaitThrows;
    }

    /// <summary>An await that throws past everything is a leak; one inside a <c>try</c> with handlers goes on in them.</summary>
    private void Awaits(IOperation root, BasicBlock block, Step step, Stack<Step> pending, HashSet<(int, bool)> visited, ref Leak? awaitThrows)
    {
        if ((_exceptions & ExceptionPaths.Await) == 0)
        {
            return;
        }

        foreach (var operation in Descendants(root))
        {
            if (operation is not IAwaitOperation awaited || !MayThrow(awaited))
            {
                continue;
            }

            if (!Protected(block))
            {
                awaitThrows ??= new Leak(LeakKind.AwaitThrows, step.Cause ?? awaited);
            }

            Enter(Handlers(block), step.Cause ?? awaited, pending, visited);
        }
    }

    /// <summary>Goes on in each of <paramref name="handlers"/>, once per kind of path.</summary>
    private static void Enter(IEnumerable<BasicBlock> handlers, IOperation? cause, Stack<Step> pending, HashSet<(int, bool)> visited)
    {
        foreach (var handler in handlers)
        {
            if (visited.Add((handler.Ordinal, cause is not null)))
            {
                pending.Push(new Step(handler, 0, cause));
            }
        }
    }

    /// <summary>The first blocks of the catch clauses (or filters) of the innermost <c>try</c> with a catch around <paramref name="block"/>.</summary>
    private IEnumerable<BasicBlock> Handlers(BasicBlock block)
    {
        for (var region = block.EnclosingRegion; region is not null; region = region.EnclosingRegion)
        {
            if (region.Kind == ControlFlowRegionKind.Try && region.EnclosingRegion is { Kind: ControlFlowRegionKind.TryAndCatch } tryAndCatch)
            {
                return tryAndCatch.NestedRegions.Skip(1).Select(handler => _graph.Blocks[handler.FirstBlockOrdinal]);
            }
        }

        return Enumerable.Empty<BasicBlock>();
    }

    private void Follow(Step step, ControlFlowBranch? branch, bool valueIsNull, Stack<Step> pending, HashSet<(int, bool)> visited, ref Leak? exit)
    {
        if (branch is null || valueIsNull || branch.FinallyRegions.Any(Releases))
        {
            return;
        }

        var from = step.Block;
        switch (branch.Semantics)
        {
            case ControlFlowBranchSemantics.Throw or ControlFlowBranchSemantics.Rethrow:
                if ((_exceptions & ExceptionPaths.Throw) != 0 && !Protected(from))
                {
                    exit ??= step.LeakAt(LeakKind.Exit, Leaving(from));
                }

                Enter(Handlers(from), step.Cause, pending, visited); // a throw the code writes goes on in the catch of its try
                return;
            case ControlFlowBranchSemantics.Regular or ControlFlowBranchSemantics.Return when branch.Destination is { } destination:
                if (destination.Kind == BasicBlockKind.Exit)
                {
                    exit ??= step.LeakAt(LeakKind.Exit, Leaving(from));
                }
                else if (visited.Add((destination.Ordinal, step.Cause is not null)))
                {
                    pending.Push(new Step(destination, 0, step.Cause));
                }

                return;
            default:
                // The end of a finally or catch, or code the compiler reports as an error: not followed.
                return;
        }
    }

    /// <summary>What a path leaves by: the returned or thrown value, else the block's last operation.</summary>
    private static IOperation? Leaving(BasicBlock block) => block.BranchValue ?? block.Operations.LastOrDefault();

    /// <summary>The most decisive use of the value in <paramref name="root"/>, in evaluation order where it matters.</summary>
    private Use Uses(IOperation root)
    {
        var result = Use.None;
        foreach (var operation in Descendants(root))
        {
            if (!IsAlias(operation))
            {
                continue;
            }

            switch (Classify(operation))
            {
                case Use.Released:
                    return Use.Released;
                case Use.Overwritten:
                    result = Use.Overwritten;
                    break;
                case Use.Neutral when result == Use.None:
                    result = Use.Neutral;
                    break;
            }
        }

        return result;
    }

    /// <summary>
    /// What one reference does to the value: a release or a hand-on ends ownership, a member access or a null check
    /// keeps it, an assignment to the variable overwrites it.
    /// </summary>
    private Use Classify(IOperation reference)
    {
        var current = reference;
        var parent = current.Parent;
        while (parent is IConversionOperation)
        {
            current = parent;
            parent = parent.Parent;
        }

        switch (parent)
        {
            case IInvocationOperation invocation when invocation.Instance == current:
                // A call that gives it this object (connection.TakeSessionFrom(this)) ties the two: this object
                // may keep it, or register it elsewhere.
                return _isRelease(invocation) || invocation.Arguments.Any(argument => Strip(argument.Value) is IInstanceReferenceOperation)
                    ? Use.Released
                    : Use.Neutral;
            case IMethodReferenceOperation:
                return Use.Released; // a delegate to one of its methods: handed on
            case IMemberReferenceOperation member when member.Instance == current:
                return Use.Neutral;
            case IIsPatternOperation pattern when pattern.Pattern.DescendantsAndSelf().Any(DeclaresVariable):
                return Use.Released; // `x is { } socket`, `case IAsyncDisposable a`: a new name for it, which may dispose it
            case IDeclarationExpressionOperation:
                return Use.Neutral; // `out var socket`: where the value arrives, not where it goes
            case IIsNullOperation or IIsPatternOperation or IIsTypeOperation or INameOfOperation or IFlowCaptureOperation:
                return Use.Neutral;
            case IArgumentOperation argument when TrackedResources.Borrows(argument):
                return Use.Neutral;
            case IBinaryOperation binary when IsNull(binary.LeftOperand) || IsNull(binary.RightOperand):
                return Use.Neutral;
            case ISimpleAssignmentOperation assignment when assignment.Target == current:
                return assignment.Value is { } value && IsAlias(Strip(value)) ? Use.Neutral : Use.Overwritten;
            case IAssignmentOperation written when reference is ILocalReferenceOperation && written.Target == current:
                return Use.Overwritten;
            default:
                return Use.Released; // returned, stored, passed, captured: someone else's now
        }
    }

    private static bool DeclaresVariable(IOperation pattern) => pattern switch
    {
        IDeclarationPatternOperation declaration => declaration.DeclaredSymbol is not null,
        IRecursivePatternOperation recursive => recursive.DeclaredSymbol is not null,
        IListPatternOperation list => list.DeclaredSymbol is not null,
        _ => false,
    };

    private static bool IsNull(IOperation operation) => Strip(operation).ConstantValue is { HasValue: true, Value: null };

    private bool IsAlias(IOperation operation) => operation switch
    {
        ILocalReferenceOperation local => SymbolEqualityComparer.Default.Equals(local.Local, _local),
        IFlowCaptureReferenceOperation capture => _aliases.Contains(capture.Id),
        _ => false,
    };

    /// <summary>The flow captures that hold the value (<c>x?.Dispose()</c>, <c>using (x)</c>, <c>a ?? x</c> capture it).</summary>
    private void FindAliases()
    {
        bool added;
        do
        {
            added = false;
            foreach (var block in _graph.Blocks)
            {
                foreach (var operation in block.Operations)
                {
                    foreach (var descendant in Descendants(operation))
                    {
                        if (descendant is IFlowCaptureOperation capture && IsAlias(Strip(capture.Value)) && _aliases.Add(capture.Id))
                        {
                            added = true;
                        }
                    }
                }
            }
        }
        while (added);
    }

    /// <summary>Which value of the block's condition means the value is null, when the condition is a null check of it.</summary>
    private ControlFlowConditionKind? NullWhen(BasicBlock block)
    {
        if (block.ConditionKind == ControlFlowConditionKind.None || block.BranchValue is null)
        {
            return null;
        }

        switch (Strip(block.BranchValue))
        {
            case IIsNullOperation isNull when IsAlias(Strip(isNull.Operand)):
                return ControlFlowConditionKind.WhenTrue;
            case IBinaryOperation { OperatorKind: BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals } binary
                when (IsAlias(Strip(binary.LeftOperand)) && IsNull(binary.RightOperand)) || (IsAlias(Strip(binary.RightOperand)) && IsNull(binary.LeftOperand)):
                return binary.OperatorKind == BinaryOperatorKind.Equals ? ControlFlowConditionKind.WhenTrue : ControlFlowConditionKind.WhenFalse;
            case IIsPatternOperation { Pattern: IConstantPatternOperation constant } pattern when IsAlias(Strip(pattern.Value)) && IsNull(constant.Value):
                return ControlFlowConditionKind.WhenTrue;
            case IIsPatternOperation { Pattern: INegatedPatternOperation { Pattern: IConstantPatternOperation constant } } pattern when IsAlias(Strip(pattern.Value)) && IsNull(constant.Value):
                return ControlFlowConditionKind.WhenFalse;
            default:
                return null;
        }
    }

    /// <summary>Awaiting a disposal (another resource's), a yield or a completed task is not where a leak starts.</summary>
    private static bool MayThrow(IAwaitOperation awaited)
    {
        var operand = Strip(awaited.Operation);
        if (operand is IInvocationOperation { TargetMethod.Name: "ConfigureAwait", Instance: { } configured })
        {
            operand = Strip(configured);
        }

        return operand switch
        {
            IInvocationOperation { TargetMethod.Name: "DisposeAsync" or "Yield" } => false,
            IPropertyReferenceOperation { Property.Name: "CompletedTask" } => false,
            _ => true,
        };
    }

    /// <summary>True when an exception in <paramref name="block"/> meets a catch first, or a finally that releases the value.</summary>
    private bool Protected(BasicBlock block)
    {
        for (var region = block.EnclosingRegion; region is not null; region = region.EnclosingRegion)
        {
            if (region.Kind != ControlFlowRegionKind.Try || region.EnclosingRegion is not { } handled)
            {
                continue;
            }

            if (handled.Kind == ControlFlowRegionKind.TryAndCatch)
            {
                return true;
            }

            if (handled.Kind == ControlFlowRegionKind.TryAndFinally && Releases(handled.NestedRegions[handled.NestedRegions.Length - 1]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when some code of the region releases the value or hands it on.</summary>
    private bool Releases(ControlFlowRegion region)
    {
        if (_regionReleases.TryGetValue(region, out var releases))
        {
            return releases;
        }

        releases = false;
        for (var ordinal = region.FirstBlockOrdinal; ordinal <= region.LastBlockOrdinal && !releases; ordinal++)
        {
            var block = _graph.Blocks[ordinal];
            releases = block.Operations.Any(operation => Uses(operation) == Use.Released)
                || (block.BranchValue is { } value && Uses(value) == Use.Released);
        }

        _regionReleases[region] = releases;
        return releases;
    }

    /// <summary>True when any code of the function releases the value or hands it on, on whatever path.</summary>
    private bool EverReleased() =>
        _graph.Blocks.Any(block => block.Operations.Any(operation => Uses(operation) == Use.Released)
            || (block.BranchValue is { } value && (Uses(value) == Use.Released || IsAlias(Strip(value)))));

    /// <summary>Where a path stands: a block, the operation to go on from, and the await whose exception led there, if one did.</summary>
    private readonly struct Step
    {
        public Step(BasicBlock block, int index, IOperation? cause)
        {
            Block = block;
            Index = index;
            Cause = cause;
        }

        public BasicBlock Block { get; }

        public int Index { get; }

        public IOperation? Cause { get; }

        /// <summary>A leak at <paramref name="at"/>, or, on a path an exception opened, the await that threw.</summary>
        public Leak LeakAt(LeakKind kind, IOperation? at) => Cause is null ? new Leak(kind, at) : new Leak(LeakKind.AwaitThrows, Cause);
    }

    /// <summary>The operation under its conversions.</summary>
    public static IOperation Strip(IOperation operation)
    {
        while (operation is IConversionOperation conversion)
        {
            operation = conversion.Operand;
        }

        return operation;
    }

    /// <summary>The operation and those under it, in the order they are evaluated (a child before its parent is not
    /// needed: only the kind of each reference matters, and a release ends the scan).</summary>
    private static IEnumerable<IOperation> Descendants(IOperation root)
    {
        yield return root;
        foreach (var descendant in root.Descendants())
        {
            yield return descendant;
        }
    }
}
