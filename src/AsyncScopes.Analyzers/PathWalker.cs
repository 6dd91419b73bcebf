using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>
/// Follows every path through a list of statements, carrying a small state (0..7) that each statement changes, and
/// collects the states with which paths leave the statements: falling off the end, <c>return</c>, <c>break</c> or
/// <c>continue</c> out of them, and (when asked) <c>throw</c>. A set of states is a bit mask.
/// </summary>
/// <remarks>
/// Paths follow the structure of the code (blocks, <c>if</c>, <c>switch</c>, loops, <c>try</c>/<c>catch</c>/<c>finally</c>,
/// <c>using</c>); an exception that a call may throw is not a path, but a <c>catch</c> is entered with the states
/// after each statement of its <c>try</c>. A region with a <c>goto</c> is not judged.
/// </remarks>
internal abstract class PathWalker
{
    private readonly bool _throwLeaves;
    private readonly List<Frame> _frames = new();

    protected PathWalker(bool throwLeaves) => _throwLeaves = throwLeaves;

    /// <summary>The states with which paths leave the region.</summary>
    public int ExitStates { get; private set; }

    /// <summary>True when the region holds something the walker does not follow (a <c>goto</c>): judge nothing.</summary>
    public bool GaveUp { get; private set; }

    public static int Single(int state) => 1 << state;

    public static IEnumerable<int> States(int set)
    {
        for (var state = 0; state < 8; state++)
        {
            if ((set & (1 << state)) != 0)
            {
                yield return state;
            }
        }
    }

    public void WalkRegion(IEnumerable<StatementSyntax> statements, int initialState)
    {
        var end = WalkList(statements, Single(initialState));
        ExitStates |= end;
    }

    /// <summary>The state after <paramref name="node"/> (an expression or a simple statement) runs in <paramref name="state"/>.</summary>
    protected abstract int Transfer(SyntaxNode node, int state);

    /// <summary>The states when an <c>if</c>'s condition is true and when it is false.</summary>
    protected virtual (int WhenTrue, int WhenFalse) Condition(ExpressionSyntax condition, int states)
    {
        var after = Apply(condition, states);
        return (after, after);
    }

    protected int Apply(SyntaxNode? node, int states)
    {
        if (node is null || states == 0)
        {
            return states;
        }

        var result = 0;
        foreach (var state in States(states))
        {
            result |= Single(Transfer(node, state));
        }

        return result;
    }

    private int WalkList(IEnumerable<StatementSyntax> statements, int states)
    {
        foreach (var statement in statements)
        {
            states = Walk(statement, states);
            for (var i = _frames.Count - 1; i >= 0; i--)
            {
                if (_frames[i].Kind == FrameKind.Catch)
                {
                    _frames[i].Caught |= states;
                    break;
                }
            }
        }

        return states;
    }

    private int Walk(StatementSyntax statement, int states)
    {
        if (states == 0)
        {
            return 0;
        }

        switch (statement)
        {
            case BlockSyntax block:
                return WalkList(block.Statements, states);
            case IfStatementSyntax ifStatement:
                var (whenTrue, whenFalse) = Condition(ifStatement.Condition, states);
                var afterThen = Walk(ifStatement.Statement, whenTrue);
                var afterElse = ifStatement.Else is { } @else ? Walk(@else.Statement, whenFalse) : whenFalse;
                return afterThen | afterElse;
            case ReturnStatementSyntax returnStatement:
                Leave(JumpKind.Return, Apply(returnStatement.Expression, states));
                return 0;
            case ThrowStatementSyntax throwStatement:
                Leave(JumpKind.Throw, Apply(throwStatement.Expression, states));
                return 0;
            case YieldStatementSyntax yieldStatement:
                if (yieldStatement.IsKind(SyntaxKind.YieldBreakStatement))
                {
                    Leave(JumpKind.Return, states);
                    return 0;
                }

                return Apply(yieldStatement.Expression, states);
            case BreakStatementSyntax:
                Leave(JumpKind.Break, states);
                return 0;
            case ContinueStatementSyntax:
                Leave(JumpKind.Continue, states);
                return 0;
            case GotoStatementSyntax or LabeledStatementSyntax:
                GaveUp = true;
                return 0;
            case WhileStatementSyntax whileStatement:
                return Loop(states, whileStatement.Condition, whileStatement.Statement, null, conditionFirst: true);
            case DoStatementSyntax doStatement:
                return Loop(states, doStatement.Condition, doStatement.Statement, null, conditionFirst: false);
            case ForStatementSyntax forStatement:
                states = Apply(forStatement.Declaration, states);
                foreach (var initializer in forStatement.Initializers)
                {
                    states = Apply(initializer, states);
                }

                return Loop(states, forStatement.Condition, forStatement.Statement, forStatement.Incrementors, conditionFirst: true);
            case CommonForEachStatementSyntax forEach:
                return Loop(Apply(forEach.Expression, states), null, forEach.Statement, null, conditionFirst: true, mayEndAtEntry: true);
            case SwitchStatementSyntax switchStatement:
                return Switch(switchStatement, states);
            case TryStatementSyntax tryStatement:
                return Try(tryStatement, states);
            case UsingStatementSyntax usingStatement:
                states = Apply((SyntaxNode?)usingStatement.Declaration ?? usingStatement.Expression, states);
                return Walk(usingStatement.Statement, states);
            case LockStatementSyntax lockStatement:
                return Walk(lockStatement.Statement, Apply(lockStatement.Expression, states));
            case FixedStatementSyntax fixedStatement:
                return Walk(fixedStatement.Statement, Apply(fixedStatement.Declaration, states));
            case CheckedStatementSyntax checkedStatement:
                return Walk(checkedStatement.Block, states);
            case UnsafeStatementSyntax unsafeStatement:
                return Walk(unsafeStatement.Block, states);
            case LocalFunctionStatementSyntax or EmptyStatementSyntax:
                return states;
            default:
                return Apply(statement, states);
        }
    }

    private int Loop(int states, ExpressionSyntax? condition, StatementSyntax body, SeparatedSyntaxList<ExpressionSyntax>? incrementors, bool conditionFirst, bool mayEndAtEntry = false)
    {
        var frame = Push(FrameKind.Loop);
        var alwaysTrue = condition is null ? !mayEndAtEntry : condition.IsKind(SyntaxKind.TrueLiteralExpression);
        var entry = states;
        var ended = 0;

        // The states only grow, and there are at most eight: the loop settles within a few rounds.
        for (var round = 0; round < 10; round++)
        {
            var beforeBody = entry;
            if (conditionFirst)
            {
                beforeBody = Apply(condition, entry);
                if (!alwaysTrue)
                {
                    ended |= beforeBody;
                }
            }

            var afterBody = Walk(body, beforeBody) | frame.Continues;
            if (incrementors is { } steps)
            {
                foreach (var step in steps)
                {
                    afterBody = Apply(step, afterBody);
                }
            }

            if (!conditionFirst)
            {
                afterBody = Apply(condition, afterBody);
                if (!alwaysTrue)
                {
                    ended |= afterBody;
                }
            }

            var next = entry | afterBody;
            if (next == entry)
            {
                break;
            }

            entry = next;
        }

        Pop(frame);
        return ended | frame.Breaks;
    }

    private int Switch(SwitchStatementSyntax switchStatement, int states)
    {
        states = Apply(switchStatement.Expression, states);
        var frame = Push(FrameKind.Switch);
        var ended = 0;
        var hasDefault = false;
        foreach (var section in switchStatement.Sections)
        {
            hasDefault |= section.Labels.Any(label => label is DefaultSwitchLabelSyntax);
            ended |= WalkList(section.Statements, states);
        }

        Pop(frame);
        return ended | frame.Breaks | (hasDefault ? 0 : states);
    }

    private int Try(TryStatementSyntax tryStatement, int states)
    {
        var finallyFrame = tryStatement.Finally is null ? null : Push(FrameKind.Finally);
        var catchFrame = tryStatement.Catches.Count == 0 ? null : Push(FrameKind.Catch);
        var ended = Walk(tryStatement.Block, states);
        if (catchFrame is not null)
        {
            Pop(catchFrame);
            var caught = catchFrame.Caught == 0 ? states : catchFrame.Caught;
            foreach (var handler in tryStatement.Catches)
            {
                ended |= Walk(handler.Block, Apply(handler.Filter?.FilterExpression, caught));
            }
        }

        if (finallyFrame is null)
        {
            return ended;
        }

        Pop(finallyFrame);
        var finallyBlock = tryStatement.Finally!.Block;
        foreach (var (kind, jumpStates, target) in finallyFrame.Pending)
        {
            Route(kind, Walk(finallyBlock, jumpStates), target);
        }

        return Walk(finallyBlock, ended);
    }

    private void Leave(JumpKind kind, int states)
    {
        if (states == 0)
        {
            return;
        }

        Frame? target = null;
        if (kind is JumpKind.Break or JumpKind.Continue)
        {
            for (var i = _frames.Count - 1; i >= 0; i--)
            {
                if (_frames[i].Kind == FrameKind.Loop || (kind == JumpKind.Break && _frames[i].Kind == FrameKind.Switch))
                {
                    target = _frames[i];
                    break;
                }
            }
        }

        Route(kind, states, target);
    }

    /// <summary>Sends a jump to its target (a loop, a switch, or out of the region) through the finally blocks on the way.</summary>
    private void Route(JumpKind kind, int states, Frame? target)
    {
        if (states == 0)
        {
            return;
        }

        for (var i = _frames.Count - 1; i >= 0; i--)
        {
            var frame = _frames[i];
            if (frame == target)
            {
                if (kind == JumpKind.Break)
                {
                    frame.Breaks |= states;
                }
                else
                {
                    frame.Continues |= states;
                }

                return;
            }

            if (frame.Kind == FrameKind.Catch && kind == JumpKind.Throw)
            {
                // A catch of this try may handle it; its entry states already include these.
                frame.Caught |= states;
                return;
            }

            if (frame.Kind == FrameKind.Finally)
            {
                frame.Pending.Add((kind, states, target));
                return;
            }
        }

        if (kind != JumpKind.Throw || _throwLeaves)
        {
            ExitStates |= states;
        }
    }

    private Frame Push(FrameKind kind)
    {
        var frame = new Frame(kind);
        _frames.Add(frame);
        return frame;
    }

    private void Pop(Frame frame) => _frames.Remove(frame);

    private enum FrameKind
    {
        Loop,
        Switch,
        Catch,
        Finally,
    }

    private enum JumpKind
    {
        Return,
        Throw,
        Break,
        Continue,
    }

    private sealed class Frame
    {
        public Frame(FrameKind kind) => Kind = kind;

        public FrameKind Kind { get; }

        public int Breaks { get; set; }

        public int Continues { get; set; }

        public int Caught { get; set; }

        public List<(JumpKind Kind, int States, Frame? Target)> Pending { get; } = new();
    }
}
