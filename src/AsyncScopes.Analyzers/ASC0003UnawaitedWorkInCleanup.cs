using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0003: asynchronous cleanup (a <c>DisposeAsync</c>, an <c>ExitAsync</c>, an exit given to the library) starts work
/// it does not await: a task-returning call whose task is dropped, discarded with <c>_ =</c>, or kept in a local that
/// is never used again, or a call of an <c>async void</c> method.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0003UnawaitedWorkInCleanup : DiagnosticAnalyzer
{
    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.UnawaitedWorkInCleanup,
        "Await the work that cleanup starts",
        "'{1}' does not await '{0}': {2}",
        Rules.Reliability,
        "Cleanup that starts work without awaiting it completes before that work ends: the caller goes on as if the " +
        "resource were released while it is still being closed, and what the work throws is lost. Await every task " +
        "that DisposeAsync or an exit starts.");

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
                SyntaxKind.ParenthesizedLambdaExpression,
                SyntaxKind.SimpleLambdaExpression,
                SyntaxKind.AnonymousMethodExpression);
        });
    }

    private static void Analyze(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        if (Functions.Cleanup(context.Node, context.SemanticModel, known, context.CancellationToken) != CleanupKind.Asynchronous
            || Functions.Body(context.Node) is not { } body)
        {
            return;
        }

        var cleanupName = context.Node is MethodDeclarationSyntax method ? method.Identifier.ValueText : "the exit delegate";

        // A cleanup that is not async and returns a task of its own (not a completed one) may well complete that task
        // when the work it started ends: only its async void calls are judged.
        var asyncVoidOnly = !Functions.IsAsync(context.Node) && !AsyncDisposal.ReturnsOnlyCompletedTasks(body);
        foreach (var node in Functions.OwnNodes(body))
        {
            if (asyncVoidOnly && node is not ExpressionStatementSyntax { Expression: InvocationExpressionSyntax })
            {
                continue;
            }

            switch (node)
            {
                case ExpressionStatementSyntax { Expression: InvocationExpressionSyntax invocation }:
                    ReportDropped(context, known, invocation, invocation, cleanupName, "its task is dropped", asyncVoidOnly);
                    break;
                case ExpressionStatementSyntax { Expression: AssignmentExpressionSyntax { Left: IdentifierNameSyntax { Identifier.ValueText: "_" } discard, Right: var right } }
                    when Unwrap(right) is InvocationExpressionSyntax invocation
                    && context.SemanticModel.GetSymbolInfo(discard, context.CancellationToken).Symbol is IDiscardSymbol:
                    ReportDropped(context, known, invocation, node, cleanupName, "its task is discarded", asyncVoidOnly);
                    break;
                case LocalDeclarationStatementSyntax { UsingKeyword.RawKind: 0 } declaration:
                    foreach (var variable in declaration.Declaration.Variables)
                    {
                        if (variable.Initializer?.Value is { } value && Unwrap(value) is InvocationExpressionSyntax started
                            && IsNeverReadAgain(variable, body, context.SemanticModel, context.CancellationToken))
                        {
                            ReportDropped(context, known, started, variable, cleanupName, "its task is kept in a local that is never awaited", asyncVoidOnly);
                        }
                    }

                    break;
            }
        }
    }

    private static ExpressionSyntax Unwrap(ExpressionSyntax expression)
    {
        while (expression is ParenthesizedExpressionSyntax parenthesized)
        {
            expression = parenthesized.Expression;
        }

        return expression;
    }

    private static void ReportDropped(SyntaxNodeAnalysisContext context, KnownTypes known, InvocationExpressionSyntax invocation, SyntaxNode location, string cleanupName, string how, bool asyncVoidOnly)
    {
        if (context.SemanticModel.GetSymbolInfo(invocation, context.CancellationToken).Symbol is not IMethodSymbol method)
        {
            return;
        }

        if (method.ReturnsVoid)
        {
            if (method.IsAsync)
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, location.GetLocation(), invocation.ToString(), cleanupName, "it is async void and cannot be awaited; make it return a Task and await it"));
            }

            return;
        }

        if (known.IsTaskLike(method.ReturnType) && !asyncVoidOnly)
        {
            context.ReportDiagnostic(Diagnostic.Create(Rule, location.GetLocation(), invocation.ToString(), cleanupName, how));
        }
    }

    private static bool IsNeverReadAgain(VariableDeclaratorSyntax variable, SyntaxNode body, SemanticModel model, CancellationToken cancellationToken)
    {
        var local = model.GetDeclaredSymbol(variable, cancellationToken);
        if (local is null)
        {
            return false;
        }

        var name = variable.Identifier.ValueText;
        return !body.DescendantNodes().OfType<IdentifierNameSyntax>().Any(identifier =>
            identifier.Identifier.ValueText == name
            && SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(identifier, cancellationToken).Symbol, local));
    }
}
