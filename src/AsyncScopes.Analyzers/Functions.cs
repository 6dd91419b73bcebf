using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>What the rules need to know about the function (method, local function, lambda) a node belongs to.</summary>
internal static class Functions
{
    /// <summary>The innermost method, accessor, constructor, local function, lambda or anonymous method around <paramref name="node"/>.</summary>
    public static SyntaxNode? Enclosing(SyntaxNode node)
    {
        for (var current = node.Parent; current is not null; current = current.Parent)
        {
            if (IsFunction(current))
            {
                return current;
            }
        }

        return null;
    }

    public static bool IsFunction(SyntaxNode node) =>
        node is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax or LocalFunctionStatementSyntax
            or AnonymousFunctionExpressionSyntax or ArrowExpressionClauseSyntax { Parent: PropertyDeclarationSyntax or IndexerDeclarationSyntax };

    /// <summary>True when the function is declared <c>async</c>.</summary>
    public static bool IsAsync(SyntaxNode? function) => function switch
    {
        MethodDeclarationSyntax method => method.Modifiers.Any(SyntaxKind.AsyncKeyword),
        LocalFunctionStatementSyntax local => local.Modifiers.Any(SyntaxKind.AsyncKeyword),
        AnonymousFunctionExpressionSyntax anonymous => anonymous.AsyncKeyword.IsKind(SyntaxKind.AsyncKeyword),
        _ => false,
    };

    /// <summary>
    /// True when an <c>await</c> could be written at <paramref name="node"/>: its function is async and the node is not
    /// inside a <c>lock</c> or an <c>unsafe</c> block of that function.
    /// </summary>
    public static bool CanAwaitAt(SyntaxNode node)
    {
        for (var current = node.Parent; current is not null; current = current.Parent)
        {
            if (current is LockStatementSyntax or UnsafeStatementSyntax)
            {
                return false;
            }

            if (IsFunction(current))
            {
                return IsAsync(current);
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="call"/> (<c>gate.Wait(ct)</c>, <c>stream.Dispose()</c>) is in the synchronous branch of
    /// code written to run either way, which runs only when the caller asked for synchronous I/O: one branch of an
    /// <c>if</c>/<c>else</c> or a <c>?:</c> whose other branch awaits its asynchronous twin on the same receiver
    /// (<c>await gate.WaitAsync(ct)</c>, <c>await stream.DisposeAsync()</c>), or the synchronous branch of a test of an
    /// <c>async</c> flag or an <c>IOBehavior</c>.
    /// </summary>
    public static bool HasAsyncTwin(SyntaxNode call)
    {
        if (call is not InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax member })
        {
            return false;
        }

        var twin = member.Name.Identifier.ValueText + "Async";
        if (IsOnSynchronousPath(call))
        {
            return true;
        }

        for (var current = call; current.Parent is { } parent && !IsFunction(parent); current = parent)
        {
            var other = parent switch
            {
                IfStatementSyntax ifStatement when ifStatement.Statement == current => (SyntaxNode?)ifStatement.Else?.Statement,
                ElseClauseSyntax { Parent: IfStatementSyntax ifStatement } => ifStatement.Statement,
                ConditionalExpressionSyntax conditional when conditional.WhenTrue == current => conditional.WhenFalse,
                ConditionalExpressionSyntax conditional when conditional.WhenFalse == current => conditional.WhenTrue,
                _ => null,
            };
            if (other is not null && OwnNodes(other).OfType<AwaitExpressionSyntax>().Any(awaited =>
                    awaited.DescendantNodes().OfType<InvocationExpressionSyntax>().Any(candidate =>
                        candidate.Expression is MemberAccessExpressionSyntax candidateMember
                        && candidateMember.Name.Identifier.ValueText == twin
                        && candidateMember.Expression.IsEquivalentTo(member.Expression, topLevel: false))))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when <paramref name="node"/> runs only for synchronous I/O: in the synchronous branch of a test of an
    /// <c>async</c> flag or an <c>IOBehavior</c>, or after a guard that leaves when the flag is set
    /// (<c>if (_async) throw new InvalidOperationException(...);</c>, or a throw helper:
    /// <c>if (_async) ThrowHelper.ThrowInvalidOperationException(...);</c>).
    /// </summary>
    public static bool IsOnSynchronousPath(SyntaxNode node)
    {
        for (var current = node; current.Parent is { } parent && !IsFunction(parent); current = parent)
        {
            if (IsSynchronousBranch(parent, current))
            {
                return true;
            }

            if (parent is BlockSyntax block && current is StatementSyntax statement
                && block.Statements.TakeWhile(previous => previous != statement).OfType<IfStatementSyntax>().Any(guard =>
                    guard.Else is null && IsAsyncFlag(guard.Condition)
                    && Leaves(guard.Statement is BlockSyntax body ? body.Statements.LastOrDefault() : guard.Statement)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A <c>throw</c>, a <c>return</c>, or a call of a throw helper (<c>ThrowHelper.ThrowInvalidOperationException(...)</c>).</summary>
    private static bool Leaves(StatementSyntax? statement) => statement switch
    {
        ThrowStatementSyntax or ReturnStatementSyntax => true,
        ExpressionStatementSyntax { Expression: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax member } } =>
            member.Name.Identifier.ValueText.StartsWith("Throw", StringComparison.Ordinal),
        _ => false,
    };

    private static bool IsAsyncFlag(ExpressionSyntax condition) =>
        condition is IdentifierNameSyntax identifier && IsAsyncFlagName(identifier.Identifier.ValueText)
            || condition is MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax } member && IsAsyncFlagName(member.Name.Identifier.ValueText);

    /// <summary>
    /// True when <paramref name="branch"/> is the branch of <paramref name="parent"/> (an <c>if</c> or a <c>?:</c>) that
    /// runs for synchronous I/O: the <c>else</c> of <c>if (async)</c> or of <c>if (io == IOBehavior.Asynchronous)</c>,
    /// the body of <c>if (!async)</c> or of <c>if (io == IOBehavior.Synchronous)</c>.
    /// </summary>
    private static bool IsSynchronousBranch(SyntaxNode parent, SyntaxNode branch)
    {
        var (condition, whenTrue) = parent switch
        {
            IfStatementSyntax ifStatement when ifStatement.Statement == branch => (ifStatement.Condition, true),
            ElseClauseSyntax { Parent: IfStatementSyntax ifStatement } => (ifStatement.Condition, false),
            ConditionalExpressionSyntax conditional when conditional.WhenTrue == branch => (conditional.Condition, true),
            ConditionalExpressionSyntax conditional when conditional.WhenFalse == branch => (conditional.Condition, false),
            _ => (null, false),
        };

        return condition switch
        {
            not null when IsAsyncFlag(condition) => !whenTrue,
            PrefixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.LogicalNotExpression, Operand: var flag } when IsAsyncFlag(flag) => whenTrue,
            BinaryExpressionSyntax { RawKind: (int)SyntaxKind.EqualsExpression, Right: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Asynchronous" } } => !whenTrue,
            BinaryExpressionSyntax { RawKind: (int)SyntaxKind.EqualsExpression, Right: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Synchronous" } } => whenTrue,
            _ => false,
        };
    }

    /// <summary>A <c>catch</c> that takes every exception: no filter, and no type or <c>Exception</c>.</summary>
    public static bool IsCatchAll(CatchClauseSyntax @catch) =>
        @catch.Filter is null && (@catch.Declaration is null || @catch.Declaration.Type.ToString() is "Exception" or "System.Exception");

    /// <summary>
    /// True when <paramref name="function"/> is written to run either way: it takes the flag that says which
    /// (<c>bool async</c>) or an <c>IOBehavior</c>. An <c>await</c> in its code common to both paths would run on the
    /// synchronous path too.
    /// </summary>
    public static bool RunsEitherWay(SyntaxNode function)
    {
        var parameters = function switch
        {
            BaseMethodDeclarationSyntax method => method.ParameterList,
            LocalFunctionStatementSyntax local => local.ParameterList,
            ParenthesizedLambdaExpressionSyntax lambda => lambda.ParameterList,
            _ => null,
        };
        return parameters is not null && parameters.Parameters.Any(parameter =>
            (parameter.Type is PredefinedTypeSyntax { Keyword.RawKind: (int)SyntaxKind.BoolKeyword } && IsAsyncFlagName(parameter.Identifier.ValueText))
            || parameter.Type is IdentifierNameSyntax { Identifier.ValueText: "IOBehavior" });
    }

    /// <summary>True when <paramref name="name"/> is how code written to run either way names its flag
    /// (<c>async</c>, <c>isAsync</c>, <c>useAsync</c>, and the fields <c>_async</c>, <c>_isAsync</c>).</summary>
    public static bool IsAsyncFlagName(string name) => name is "async" or "isAsync" or "useAsync" or "_async" or "_isAsync";

    /// <summary>The body of a function: its block, or the expression of its arrow.</summary>
    public static SyntaxNode? Body(SyntaxNode function) => function switch
    {
        BaseMethodDeclarationSyntax method => (SyntaxNode?)method.Body ?? method.ExpressionBody?.Expression,
        AccessorDeclarationSyntax accessor => (SyntaxNode?)accessor.Body ?? accessor.ExpressionBody?.Expression,
        LocalFunctionStatementSyntax local => (SyntaxNode?)local.Body ?? local.ExpressionBody?.Expression,
        AnonymousFunctionExpressionSyntax anonymous => anonymous.Body,
        ArrowExpressionClauseSyntax arrow => arrow.Expression,
        _ => null,
    };

    /// <summary>The descendants of <paramref name="root"/> that run as part of it: nested functions are left out.</summary>
    public static IEnumerable<SyntaxNode> OwnNodes(SyntaxNode root) =>
        root.DescendantNodesAndSelf(node => node == root || !IsFunction(node));

    /// <summary>
    /// What kind of cleanup a function is: a <c>Dispose</c> (or <c>Dispose(bool)</c>) method or a finalizer
    /// (synchronous), a <c>DisposeAsync</c>, <c>DisposeAsyncCore</c> or <c>ExitAsync</c> method, or a lambda given to
    /// the library as an exit (<c>AsyncContext.Create</c>'s exit or release, <c>AsyncExitStack.Defer</c> and
    /// <c>PushExit</c>), which are asynchronous. Null for anything else.
    /// </summary>
    public static CleanupKind? Cleanup(SyntaxNode function, SemanticModel model, KnownTypes known, CancellationToken cancellationToken)
    {
        switch (function)
        {
            case DestructorDeclarationSyntax:
                return CleanupKind.Synchronous;
            case MethodDeclarationSyntax method:
                var name = method.Identifier.ValueText;
                var parameters = method.ParameterList.Parameters;
                if (name == "Dispose" && (parameters.Count == 0 || (parameters.Count == 1 && parameters[0].Type is PredefinedTypeSyntax { Keyword.RawKind: (int)SyntaxKind.BoolKeyword })))
                {
                    return CleanupKind.Synchronous;
                }

                if ((name is "DisposeAsync" or "DisposeAsyncCore" && parameters.Count == 0) || (name == "ExitAsync" && parameters.Count == 1))
                {
                    return CleanupKind.Asynchronous;
                }

                return null;
            case AnonymousFunctionExpressionSyntax lambda when IsExitDelegate(lambda, model, known, cancellationToken):
                return CleanupKind.Asynchronous;
            default:
                return null;
        }
    }

    private static bool IsExitDelegate(AnonymousFunctionExpressionSyntax lambda, SemanticModel model, KnownTypes known, CancellationToken cancellationToken)
    {
        if (lambda.Parent is not ArgumentSyntax { Parent: ArgumentListSyntax { Parent: InvocationExpressionSyntax invocation } } argument
            || model.GetSymbolInfo(invocation, cancellationToken).Symbol is not IMethodSymbol method)
        {
            return false;
        }

        var definition = method.ReducedFrom ?? method;
        if (KnownTypes.Is(definition.ContainingType, known.AsyncExitStack))
        {
            return definition.Name is "Defer" or "PushExit";
        }

        if (KnownTypes.Is(definition.ContainingType, known.AsyncContext) && definition.Name == "Create")
        {
            var index = invocation.ArgumentList.Arguments.IndexOf(argument);
            var parameterName = argument.NameColon?.Name.Identifier.ValueText
                ?? (index >= 0 && index < method.Parameters.Length ? method.Parameters[index].Name : null);
            return parameterName is "exit" or "release";
        }

        return false;
    }
}

/// <summary>Whether a cleanup function can await: a <c>Dispose</c> or finalizer cannot, a <c>DisposeAsync</c> or exit can.</summary>
internal enum CleanupKind
{
    Synchronous,
    Asynchronous,
}
