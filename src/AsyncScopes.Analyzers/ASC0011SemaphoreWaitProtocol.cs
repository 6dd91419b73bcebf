using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0011: a <c>SemaphoreSlim</c> permit released that was never taken: a wait that can fail (it takes a token or a
/// timeout) inside the <c>try</c> whose <c>finally</c> releases the permit, and a timed wait whose result (whether the
/// permit was taken) is ignored by a function that releases it.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0011SemaphoreWaitProtocol : DiagnosticAnalyzer
{
    /// <summary>The property that says which finding a diagnostic is: <see cref="InsideTry"/> or <see cref="Ignored"/>.</summary>
    internal const string FindingProperty = "Finding";

    /// <summary>The wait is inside the <c>try</c> that releases.</summary>
    internal const string InsideTry = "InsideTry";

    /// <summary>The timed wait's result is ignored.</summary>
    internal const string Ignored = "Ignored";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.SemaphoreWaitProtocol,
        "Release only a semaphore permit that was taken",
        "'{0}' {1}",
        Rules.Reliability,
        "Release gives a permit back whether or not it was taken. A wait that is cancelled, fails or times out inside " +
        "the try whose finally releases, or a timed wait whose false result is ignored, releases a permit it never " +
        "took: the semaphore then lets one caller too many in, for good. Wait before the try, and check a timed " +
        "wait's result.");

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
            if (known.SemaphoreSlim is null)
            {
                return;
            }

            start.RegisterSyntaxNodeAction(node => Analyze(node, known), SyntaxKind.InvocationExpression);
        });
    }

    private static void Analyze(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var wait = (InvocationExpressionSyntax)context.Node;
        if (ASC0006SemaphoreReleaseNotInFinally.SemaphoreWait(wait, context.SemanticModel, known, context.CancellationToken) is not var (method, semaphore, body))
        {
            return;
        }

        var timed = method.Parameters.Any(parameter => parameter.Name is "millisecondsTimeout" or "timeout");
        var canFail = timed || method.Parameters.Any(parameter => parameter.Type.Name == nameof(CancellationToken));
        var statement = ResultDiscardedIn(wait);
        var released = ASC0006SemaphoreReleaseNotInFinally.Releases(body, semaphore, context.SemanticModel, context.CancellationToken).Any();

        if (canFail && TryReleasingUnconditionally(wait, body, semaphore, context.SemanticModel, context.CancellationToken) is not null)
        {
            Report(context, wait, InsideTry, "waits inside the try whose finally releases the permit: when the wait is cancelled, fails or times out, the finally releases a permit never taken; wait before the try");
        }
        else if (timed && statement is not null && released)
        {
            Report(context, wait, Ignored, "ignores whether the permit was taken: when it times out, the release gives back a permit never taken; check the result");
        }
    }

    private static void Report(SyntaxNodeAnalysisContext context, InvocationExpressionSyntax wait, string finding, string what) =>
        context.ReportDiagnostic(Diagnostic.Create(
            Rule, wait.GetLocation(), ImmutableDictionary<string, string?>.Empty.Add(FindingProperty, finding), wait.ToString(), what));

    /// <summary>The statement that throws the wait's result away (<c>s.Wait(t);</c>, <c>await s.WaitAsync(t);</c>,
    /// <c>_ = ...;</c>), or null when the result is used.</summary>
    internal static ExpressionStatementSyntax? ResultDiscardedIn(InvocationExpressionSyntax wait)
    {
        // gate.WaitAsync(t).ConfigureAwait(false) is the same wait.
        SyntaxNode node = wait.Parent is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "ConfigureAwait", Parent: InvocationExpressionSyntax configured }
            ? configured
            : wait;
        node = node.Parent is AwaitExpressionSyntax awaited ? awaited : node;
        while (node.Parent is ParenthesizedExpressionSyntax)
        {
            node = node.Parent;
        }

        return node.Parent switch
        {
            ExpressionStatementSyntax statement => statement,
            AssignmentExpressionSyntax { Left: IdentifierNameSyntax { Identifier.ValueText: "_" }, Parent: ExpressionStatementSyntax statement } => statement,
            _ => null,
        };
    }

    /// <summary>The <c>try</c> around the wait (within its function) whose <c>finally</c> releases the semaphore
    /// unconditionally; null when there is none (a release under an <c>if</c> checks something, such as a flag set
    /// by the wait).</summary>
    internal static TryStatementSyntax? TryReleasingUnconditionally(
        InvocationExpressionSyntax wait, SyntaxNode body, ISymbol semaphore, SemanticModel model, CancellationToken cancellationToken)
    {
        for (SyntaxNode child = wait, current = wait.Parent!; current is not null && child != body; child = current, current = current.Parent!)
        {
            if (current is TryStatementSyntax tryStatement && tryStatement.Block == child && tryStatement.Finally is { } @finally)
            {
                return ASC0006SemaphoreReleaseNotInFinally.Releases(@finally.Block, semaphore, model, cancellationToken)
                    .Any(release => !release.Ancestors().TakeWhile(ancestor => ancestor != @finally.Block).Any(ancestor => ancestor is IfStatementSyntax or ConditionalExpressionSyntax))
                    ? tryStatement
                    : null;
            }

            if (Functions.IsFunction(current))
            {
                return null;
            }
        }

        return null;
    }
}
