using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using static Microsoft.CodeAnalysis.CSharp.SyntaxFactory;

namespace AsyncScopes.Analyzers;

/// <summary>Syntax the code fixes share.</summary>
internal static class FixSyntax
{
    /// <summary>
    /// True when the file already writes <c>.ConfigureAwait(false)</c>: the awaits a fix adds then follow that style
    /// (a library), and stay plain otherwise (an application or a test).
    /// </summary>
    public static bool UsesConfigureAwait(SyntaxNode root) =>
        root.DescendantNodes().OfType<InvocationExpressionSyntax>().Any(invocation =>
            invocation.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "ConfigureAwait" }
            && invocation.ArgumentList.Arguments.Count == 1
            && invocation.ArgumentList.Arguments[0].Expression.IsKind(SyntaxKind.FalseLiteralExpression));

    /// <summary><c>await expression</c>, with <c>.ConfigureAwait(false)</c> when <paramref name="configureAwait"/>.</summary>
    public static AwaitExpressionSyntax Await(ExpressionSyntax expression, bool configureAwait)
    {
        var awaited = expression.WithoutTrivia();
        if (configureAwait && awaited is not InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "ConfigureAwait" } })
        {
            awaited = InvocationExpression(
                MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, awaited, IdentifierName("ConfigureAwait")),
                ArgumentList(SingletonSeparatedList(Argument(LiteralExpression(SyntaxKind.FalseLiteralExpression)))));
        }

        return AwaitExpression(awaited);
    }

    /// <summary>The task that <c>task.Result</c>, <c>task.Wait()</c> or <c>task.GetAwaiter().GetResult()</c> blocks on;
    /// null for anything else.</summary>
    public static ExpressionSyntax? BlockedTask(SyntaxNode node) => node switch
    {
        MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Result" } result => result.Expression,
        InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Wait" } wait, ArgumentList.Arguments.Count: 0 } => wait.Expression,
        InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "GetResult", Expression: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax getAwaiter } } } => getAwaiter.Expression,
        _ => null,
    };

    /// <summary><paramref name="awaited"/> where <paramref name="node"/> was: in parentheses, which the simplifier
    /// removes where they are not needed, unless it stands alone (a statement, an initializer, a return, an argument).</summary>
    public static ExpressionSyntax InPlaceOf(SyntaxNode node, AwaitExpressionSyntax awaited)
    {
        ExpressionSyntax replacement = awaited;
        if (node.Parent is not (ExpressionStatementSyntax or EqualsValueClauseSyntax or ReturnStatementSyntax or ArgumentSyntax))
        {
            replacement = ParenthesizedExpression(awaited).WithAdditionalAnnotations(Microsoft.CodeAnalysis.Simplification.Simplifier.Annotation);
        }

        return replacement.WithTriviaFrom(node);
    }

    /// <summary>The <c>await</c> and <c>using</c> keywords in front of a declaration, keeping its leading trivia in front of them.</summary>
    public static LocalDeclarationStatementSyntax AwaitUsing(LocalDeclarationStatementSyntax declaration)
    {
        var leading = declaration.GetLeadingTrivia();
        var first = declaration.WithoutLeadingTrivia();
        return first
            .WithAwaitKeyword(Token(leading, SyntaxKind.AwaitKeyword, TriviaList(Space)))
            .WithUsingKeyword(Token(TriviaList(), SyntaxKind.UsingKeyword, TriviaList(Space)));
    }

    /// <summary>The <c>using</c> keyword in front of a declaration, keeping its leading trivia in front of it.</summary>
    public static LocalDeclarationStatementSyntax Using(LocalDeclarationStatementSyntax declaration)
    {
        var leading = declaration.GetLeadingTrivia();
        return declaration.WithoutLeadingTrivia().WithUsingKeyword(Token(leading, SyntaxKind.UsingKeyword, TriviaList(Space)));
    }

    /// <summary>Inserts <paramref name="statement"/> as the last statement of the list, or before a final <c>return</c>.</summary>
    public static SyntaxList<StatementSyntax> AppendBeforeFinalReturn(SyntaxList<StatementSyntax> statements, StatementSyntax statement)
    {
        if (statements.LastOrDefault() is ReturnStatementSyntax)
        {
            return statements.Insert(statements.Count - 1, statement);
        }

        return statements.Add(statement);
    }
}
