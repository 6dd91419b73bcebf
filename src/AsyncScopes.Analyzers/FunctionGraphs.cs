using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>What the rules that follow a local through the compiler's control flow graphs ask of a function's graphs.</summary>
internal static class FunctionGraphs
{
    /// <summary>The graphs of the lambdas and local functions inside <paramref name="graph"/>, at any depth (not the graph itself).</summary>
    public static IEnumerable<ControlFlowGraph> Nested(ControlFlowGraph graph, CancellationToken cancellationToken)
    {
        var pending = new Stack<ControlFlowGraph>();
        pending.Push(graph);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            foreach (var block in current.Blocks)
            {
                foreach (var root in block.BranchValue is null ? block.Operations : block.Operations.Add(block.BranchValue))
                {
                    foreach (var function in root.DescendantsAndSelf().OfType<IFlowAnonymousFunctionOperation>())
                    {
                        var nested = current.GetAnonymousFunctionControlFlowGraph(function, cancellationToken);
                        pending.Push(nested);
                        yield return nested;
                    }
                }
            }

            foreach (var localFunction in current.LocalFunctions)
            {
                var nested = current.GetLocalFunctionControlFlowGraph(localFunction, cancellationToken);
                pending.Push(nested);
                yield return nested;
            }
        }
    }

    /// <summary>
    /// The local and the value when operation <paramref name="index"/> of <paramref name="block"/> is an assignment to a
    /// local that is a statement of its own (a declaration's initializer or <c>x = ...;</c>); one inside a larger
    /// expression (<c>using (stream = File.OpenRead(path))</c>, <c>_socket = socket = new()</c>) gives the value on to it.
    /// </summary>
    /// <remarks>
    /// An object initializer is built in a flow capture, and an assignment statement with one captures its target too:
    /// both are seen through, with <paramref name="captures"/> (<see cref="CapturedValues"/>, made when first needed).
    /// </remarks>
    public static (ILocalSymbol Local, IOperation Value)? AssignedLocal(ControlFlowGraph graph, BasicBlock block, int index, ref Dictionary<CaptureId, IOperation>? captures)
    {
        var operation = block.Operations[index];
        if (operation is IExpressionStatementOperation statement)
        {
            operation = statement.Operation;
        }

        if (operation is not ISimpleAssignmentOperation { Target: var target, Value: var value })
        {
            return null;
        }

        if (target is IFlowCaptureReferenceOperation capturedTarget)
        {
            target = (captures ??= CapturedValues(graph)).TryGetValue(capturedTarget.Id, out var local) ? local : target;
        }

        if (value is IFlowCaptureReferenceOperation capturedValue)
        {
            value = (captures ??= CapturedValues(graph)).TryGetValue(capturedValue.Id, out var built) ? built : value;
        }

        return target is ILocalReferenceOperation { Local: var assigned } ? (assigned, value) : null;
    }

    /// <summary>The value of each flow capture given one value only (a conditional expression gives one per branch).</summary>
    public static Dictionary<CaptureId, IOperation> CapturedValues(ControlFlowGraph graph)
    {
        var values = new Dictionary<CaptureId, IOperation>();
        var ambiguous = new HashSet<CaptureId>();
        foreach (var block in graph.Blocks)
        {
            foreach (var operation in block.Operations)
            {
                if (operation is IFlowCaptureOperation capture && !values.ContainsKey(capture.Id))
                {
                    values[capture.Id] = capture.Value;
                }
                else if (operation is IFlowCaptureOperation again)
                {
                    ambiguous.Add(again.Id);
                }
            }
        }

        foreach (var id in ambiguous)
        {
            values.Remove(id);
        }

        return values;
    }

    /// <summary>The locals a lambda or local function inside <paramref name="body"/> refers to: their paths are not the body's.</summary>
    public static HashSet<ILocalSymbol> CapturedLocals(SyntaxNode body, SemanticModel model, CancellationToken cancellationToken)
    {
        var captured = new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default);
        foreach (var function in body.DescendantNodes().Where(node => node is AnonymousFunctionExpressionSyntax or LocalFunctionStatementSyntax))
        {
            foreach (var identifier in function.DescendantNodes().OfType<IdentifierNameSyntax>())
            {
                if (model.GetSymbolInfo(identifier, cancellationToken).Symbol is ILocalSymbol local
                    && !local.DeclaringSyntaxReferences.Any(reference => function.Span.Contains(reference.GetSyntax(cancellationToken).Span)))
                {
                    captured.Add(local);
                }
            }
        }

        return captured;
    }

    /// <summary>True when <paramref name="local"/> is declared outside the function of <paramref name="graph"/> (a lambda
    /// or local function that assigns a local of the function around it): its paths are that function's.</summary>
    public static bool DeclaredOutside(ILocalSymbol local, ControlFlowGraph graph, CancellationToken cancellationToken) =>
        !local.DeclaringSyntaxReferences.Any(reference => graph.OriginalOperation.Syntax.Span.Contains(reference.GetSyntax(cancellationToken).Span));

    /// <summary>True when <paramref name="local"/> is declared by a <c>using</c> (statement or declaration), which disposes it.</summary>
    public static bool DeclaredWithUsing(ILocalSymbol local, CancellationToken cancellationToken)
    {
        foreach (var reference in local.DeclaringSyntaxReferences)
        {
            var declarator = reference.GetSyntax(cancellationToken);
            if (declarator.Parent?.Parent is LocalDeclarationStatementSyntax { UsingKeyword.RawKind: (int)SyntaxKind.UsingKeyword } or UsingStatementSyntax)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// When <paramref name="block"/> branches on a condition: the condition under its conversions and any <c>!</c>, and
    /// the block the branch goes to when that condition is true.
    /// </summary>
    public static (IOperation Condition, BasicBlock WhenTrue)? Branch(BasicBlock block)
    {
        if (block.BranchValue is null || block.ConditionKind == ControlFlowConditionKind.None)
        {
            return null;
        }

        var condition = OwnershipFlow.Strip(block.BranchValue);
        var negated = false;
        if (condition is IUnaryOperation { OperatorKind: UnaryOperatorKind.Not } not)
        {
            condition = OwnershipFlow.Strip(not.Operand);
            negated = true;
        }

        var jumpsWhenTrue = (block.ConditionKind == ControlFlowConditionKind.WhenTrue) != negated;
        var branch = jumpsWhenTrue ? block.ConditionalSuccessor : block.FallThroughSuccessor;
        return branch?.Destination is { Kind: BasicBlockKind.Block } destination ? (condition, destination) : null;
    }
}
