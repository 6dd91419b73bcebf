using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0001: a <c>using</c> or a <c>Dispose()</c> call, in code that can await, disposes synchronously an object whose
/// <c>DisposeAsync</c> does asynchronous work: the thread blocks on that work.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0001SyncDisposalInAsyncCode : DiagnosticAnalyzer
{
    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.SyncDisposalInAsyncCode,
        "Dispose asynchronously in async code",
        "'{0}' is disposed synchronously in an async method, but its DisposeAsync does asynchronous work: use '{1}'",
        Rules.Reliability,
        "Disposing an async-disposable object with 'using' or 'Dispose()' blocks the thread on the I/O its DisposeAsync " +
        "would have awaited (a flush, a rollback, a close handshake). In a method that can await, use 'await using' or " +
        "'await DisposeAsync()'. Types whose DisposeAsync only calls Dispose (a MemoryStream) are not reported.");

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

            start.RegisterSyntaxNodeAction(node => AnalyzeUsingStatement(node, known), SyntaxKind.UsingStatement);
            start.RegisterSyntaxNodeAction(node => AnalyzeUsingDeclaration(node, known), SyntaxKind.LocalDeclarationStatement);
            start.RegisterSyntaxNodeAction(node => AnalyzeDisposeCall(node, known), SyntaxKind.InvocationExpression);
        });
    }

    private static void AnalyzeUsingStatement(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var statement = (UsingStatementSyntax)context.Node;
        if (statement.AwaitKeyword.IsKind(SyntaxKind.AwaitKeyword) || !Functions.CanAwaitAt(statement))
        {
            return;
        }

        if (statement.Declaration is { } declaration)
        {
            ReportDeclarators(context, declaration, known);
        }
        else if (statement.Expression is { } expression)
        {
            var type = context.SemanticModel.GetTypeInfo(expression, context.CancellationToken).Type;
            if (AsyncDisposal.DoesAsyncWork(type, known))
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, expression.GetLocation(), expression.ToString(), "await using"));
            }
        }
    }

    private static void AnalyzeUsingDeclaration(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var statement = (LocalDeclarationStatementSyntax)context.Node;
        if (!statement.UsingKeyword.IsKind(SyntaxKind.UsingKeyword) || statement.AwaitKeyword.IsKind(SyntaxKind.AwaitKeyword)
            || !Functions.CanAwaitAt(statement))
        {
            return;
        }

        ReportDeclarators(context, statement.Declaration, known);
    }

    private static void ReportDeclarators(SyntaxNodeAnalysisContext context, VariableDeclarationSyntax declaration, KnownTypes known)
    {
        foreach (var variable in declaration.Variables)
        {
            var type = (context.SemanticModel.GetDeclaredSymbol(variable, context.CancellationToken) as ILocalSymbol)?.Type;
            if (AsyncDisposal.DoesAsyncWork(type, known))
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, variable.GetLocation(), variable.Identifier.ValueText, "await using"));
            }
        }
    }

    private static void AnalyzeDisposeCall(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var invocation = (InvocationExpressionSyntax)context.Node;
        if (invocation.ArgumentList.Arguments.Count != 0)
        {
            return;
        }

        ExpressionSyntax? receiver = invocation.Expression switch
        {
            MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Dispose" } access => access.Expression,
            MemberBindingExpressionSyntax { Name.Identifier.ValueText: "Dispose" } when invocation.Parent is ConditionalAccessExpressionSyntax conditional
                && conditional.WhenNotNull == invocation => conditional.Expression,
            _ => null,
        };

        // The object's own Dispose() called from inside it is its disposal pattern, not a use of the object.
        if (receiver is null or ThisExpressionSyntax or BaseExpressionSyntax || !Functions.CanAwaitAt(invocation))
        {
            return;
        }

        if (context.SemanticModel.GetSymbolInfo(invocation, context.CancellationToken).Symbol is not IMethodSymbol { Parameters.Length: 0, ReturnsVoid: true })
        {
            return;
        }

        var type = context.SemanticModel.GetTypeInfo(receiver, context.CancellationToken).Type;
        if (AsyncDisposal.DoesAsyncWork(type, known))
        {
            var location = invocation.Parent is ConditionalAccessExpressionSyntax conditional ? conditional.GetLocation() : invocation.GetLocation();
            context.ReportDiagnostic(Diagnostic.Create(Rule, location, receiver.ToString(), "await " + receiver + ".DisposeAsync()"));
        }
    }
}
