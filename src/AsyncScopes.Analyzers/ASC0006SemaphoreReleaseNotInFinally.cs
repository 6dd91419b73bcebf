using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0006: a function takes a <c>SemaphoreSlim</c> permit (<c>Wait</c>, <c>WaitAsync</c>) and gives it back with
/// <c>Release</c>, but not from a <c>finally</c> that covers the code in between: an exception or an early return
/// there keeps the permit forever.
/// </summary>
/// <remarks>
/// A function that waits and never releases the same semaphore is not reported: that is a semaphore used as a signal,
/// released by someone else.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0006SemaphoreReleaseNotInFinally : DiagnosticAnalyzer
{
    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.SemaphoreReleaseNotInFinally,
        "Release a semaphore in a finally",
        "The permit taken by '{0}' is released outside a finally: an exception or a return before '{1}.Release()' keeps it forever",
        Rules.Reliability,
        "A SemaphoreSlim used as a lock must be released on every path, exceptions included, or every later waiter " +
        "hangs. Release it in a finally that starts right after the wait, or let a scope do it: " +
        "'using (await gate.LockAsync(ct)) { ... }'.");

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
        if (SemaphoreWait(wait, context.SemanticModel, known, context.CancellationToken) is not var (_, semaphore, body))
        {
            return;
        }

        var access = (MemberAccessExpressionSyntax)wait.Expression;

        var releases = Releases(body, semaphore, context.SemanticModel, context.CancellationToken).ToList();
        if (releases.Count == 0)
        {
            // The permit may go with work started after the wait, which releases it when done: then that release must
            // be in a finally of the work (await gate.WaitAsync(); _ = Task.Run(async () => { ...; gate.Release(); })).
            if (ReleasedByLaterWorkOutsideFinally(wait, body, semaphore, context.SemanticModel, context.CancellationToken))
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, wait.GetLocation(), wait.ToString(), access.Expression.ToString()));
            }

            return;
        }

        if (IsGuarded(wait, body, semaphore, context.SemanticModel, context.CancellationToken))
        {
            return;
        }

        context.ReportDiagnostic(Diagnostic.Create(Rule, wait.GetLocation(), wait.ToString(), access.Expression.ToString()));
    }

    /// <summary>
    /// When <paramref name="wait"/> is a <c>SemaphoreSlim</c>'s <c>Wait</c> or <c>WaitAsync</c>: the method, the
    /// semaphore (the symbol it is called on) and the body of the function it is in; null otherwise.
    /// </summary>
    internal static (IMethodSymbol Method, ISymbol Semaphore, SyntaxNode Body)? SemaphoreWait(
        InvocationExpressionSyntax wait, SemanticModel model, KnownTypes known, CancellationToken cancellationToken) =>
        wait.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Wait" or "WaitAsync" } access
        && model.GetSymbolInfo(wait, cancellationToken).Symbol is IMethodSymbol method
        && KnownTypes.Is(method.ContainingType, known.SemaphoreSlim)
        && model.GetSymbolInfo(access.Expression, cancellationToken).Symbol is { } semaphore
        && Functions.Enclosing(wait) is { } function
        && Functions.Body(function) is { } body
            ? (method, semaphore, body)
            : null;

    /// <summary>The <c>Release</c> calls on <paramref name="semaphore"/> that run as part of <paramref name="root"/> itself.</summary>
    internal static IEnumerable<InvocationExpressionSyntax> Releases(SyntaxNode root, ISymbol semaphore, SemanticModel model, CancellationToken cancellationToken) =>
        Functions.OwnNodes(root).OfType<InvocationExpressionSyntax>().Where(invocation =>
            invocation.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Release" } release
            && SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(release.Expression, cancellationToken).Symbol, semaphore));

    /// <summary>
    /// True when a <c>finally</c> releasing the semaphore covers everything after the wait: the wait is inside that
    /// <c>try</c>, or the <c>try</c> is the very next statement (also as the first statement of an <c>if</c> whose
    /// condition is the wait).
    /// </summary>
    private static bool IsGuarded(InvocationExpressionSyntax wait, SyntaxNode body, ISymbol semaphore, SemanticModel model, CancellationToken cancellationToken)
    {
        // A finally that releases, or a catch-all that releases and rethrows: then the permit leaves with what the try
        // returns (a pooled session that gives it back) and comes back on every failure.
        bool ReleasesInFinally(TryStatementSyntax? tryStatement) =>
            (tryStatement?.Finally is { } @finally && Releases(@finally.Block, semaphore, model, cancellationToken).Any())
            || (tryStatement is not null && tryStatement.Catches.Any(@catch =>
                Functions.IsCatchAll(@catch)
                && Releases(@catch.Block, semaphore, model, cancellationToken).Any()
                && @catch.Block.Statements.LastOrDefault() is ThrowStatementSyntax { Expression: null }));

        // Only the statement that holds the wait may be followed by the guarding try; further out, only a try around it counts.
        var innermostStatement = true;
        for (SyntaxNode child = wait, current = wait.Parent!; current is not null && child != body; child = current, current = current.Parent!)
        {
            switch (current)
            {
                case TryStatementSyntax tryStatement when tryStatement.Block == child && ReleasesInFinally(tryStatement):
                    return true;
                case IfStatementSyntax ifStatement when innermostStatement && ifStatement.Condition == child
                    && ReleasesInFinally(FirstStatement(ifStatement.Statement) as TryStatementSyntax):
                    return true;
                case BlockSyntax block when innermostStatement && child is StatementSyntax statement:
                    // The try may follow statements that only hand the permit on (return a call of a method that
                    // releases it in a finally: the lockHeld pattern).
                    var index = block.Statements.IndexOf(statement) + 1;
                    while (index < block.Statements.Count
                        && (HandsOn(block.Statements[index], semaphore, model, cancellationToken) || CannotThrow(block.Statements[index], statement)))
                    {
                        index++;
                    }

                    if (index < block.Statements.Count && ReleasesInFinally(block.Statements[index] as TryStatementSyntax))
                    {
                        return true;
                    }

                    // if (!lockHeld) { await gate.WaitAsync(ct); } followed by the try: the if stands for the wait; so
                    // does an if/else that waits either way (if (async) { await gate.WaitAsync(ct); } else { gate.Wait(ct); }).
                    if (block.Statements.Count == 1
                        && (block.Parent is IfStatementSyntax { Else: null } || (block.Parent is IfStatementSyntax or ElseClauseSyntax && OtherBranchWaits(block, wait))))
                    {
                        break;
                    }

                    innermostStatement = false;
                    break;
                case SwitchSectionSyntax section when innermostStatement && child is StatementSyntax statement:
                    var position = section.Statements.IndexOf(statement);
                    if (position + 1 < section.Statements.Count && ReleasesInFinally(section.Statements[position + 1] as TryStatementSyntax))
                    {
                        return true;
                    }

                    innermostStatement = false;
                    break;
            }

            if (Functions.IsFunction(current))
            {
                return false;
            }
        }

        return false;
    }

    /// <summary>
    /// A declaration of locals with no initializer, or only constants (<c>Session? session = null;</c>); or a guard
    /// that leaves when the timed wait failed: its condition tests the local the wait statement declared
    /// (<c>var taken = ...; if (!taken) return;</c>) and calls nothing: no permit to lose.
    /// </summary>
    private static bool CannotThrow(StatementSyntax statement, StatementSyntax waitStatement) => statement switch
    {
        LocalDeclarationStatementSyntax { UsingKeyword.RawKind: 0 } declaration => declaration.Declaration.Variables.All(variable =>
            variable.Initializer is null || variable.Initializer.Value is LiteralExpressionSyntax or DefaultExpressionSyntax),
        IfStatementSyntax { Else: null } guard => waitStatement is LocalDeclarationStatementSyntax result
            && guard.Condition.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>().Any(identifier =>
                result.Declaration.Variables.Any(variable => variable.Identifier.ValueText == identifier.Identifier.ValueText))
            && !guard.Condition.DescendantNodesAndSelf().OfType<InvocationExpressionSyntax>().Any()
            && (guard.Statement is BlockSyntax block ? block.Statements.LastOrDefault() : guard.Statement) is ReturnStatementSyntax or ThrowStatementSyntax,
        _ => false,
    };

    /// <summary>The other branch of the <c>if</c> that <paramref name="branch"/> belongs to waits on the same semaphore (a wait written either way).</summary>
    private static bool OtherBranchWaits(BlockSyntax branch, InvocationExpressionSyntax wait)
    {
        var other = branch.Parent switch
        {
            IfStatementSyntax ifStatement => ifStatement.Else?.Statement,
            ElseClauseSyntax { Parent: IfStatementSyntax ifStatement } => ifStatement.Statement,
            _ => null,
        };

        return other is not null && wait.Expression is MemberAccessExpressionSyntax access
            && other.DescendantNodesAndSelf().OfType<InvocationExpressionSyntax>().Any(candidate =>
                candidate.Expression is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Wait" or "WaitAsync" } candidateAccess
                && candidateAccess.Expression.IsEquivalentTo(access.Expression, topLevel: false));
    }

    private static bool ReleasedByLaterWorkOutsideFinally(
        InvocationExpressionSyntax wait, SyntaxNode body, ISymbol semaphore, SemanticModel model, CancellationToken cancellationToken) =>
        body.DescendantNodes().OfType<AnonymousFunctionExpressionSyntax>()
            .Where(work => work.SpanStart > wait.Span.End && Functions.Body(work) is not null && IsStartedWork(work) && !CatchesEverything(work))
            .SelectMany(work => Releases(Functions.Body(work)!, semaphore, model, cancellationToken)
                .Select(release => (Work: work, Release: release)))
            .Any(found => !found.Release.Ancestors()
                .TakeWhile(ancestor => ancestor != found.Work)
                .Any(ancestor => ancestor is FinallyClauseSyntax));

    // Work started on its own (Task.Run, TaskFactory.StartNew, the thread pool): a continuation (ContinueWith) runs
    // whatever the task did, and a callback (Register) is not the work the permit went with.
    private static bool IsStartedWork(AnonymousFunctionExpressionSyntax work) =>
        work.Parent is ArgumentSyntax { Parent.Parent: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Run" or "StartNew" or "QueueUserWorkItem" or "UnsafeQueueUserWorkItem" } } };

    // A try whose catch takes everything: what follows it runs whatever the work threw.
    private static bool CatchesEverything(AnonymousFunctionExpressionSyntax work) =>
        work.DescendantNodes().OfType<CatchClauseSyntax>().Any(@catch =>
            Functions.IsCatchAll(@catch));

    // if (...) return Other(...); where Other, declared in source, releases the semaphore in a finally: the permit
    // goes with the call.
    private static bool HandsOn(StatementSyntax statement, ISymbol semaphore, SemanticModel model, CancellationToken cancellationToken)
    {
        if (statement is not IfStatementSyntax { Else: null } guard
            || FirstStatement(guard.Statement) is not ReturnStatementSyntax { Expression: InvocationExpressionSyntax call }
            || (guard.Statement is BlockSyntax { Statements.Count: > 1 })
            || model.GetSymbolInfo(call, cancellationToken).Symbol is not IMethodSymbol callee)
        {
            return false;
        }

        // Read in this file only: an analyzer may not ask for another file's semantic model.
        return callee.DeclaringSyntaxReferences.Any(reference =>
            reference.SyntaxTree == model.SyntaxTree
            && reference.GetSyntax(cancellationToken).DescendantNodes().OfType<FinallyClauseSyntax>().Any(@finally =>
                Releases(@finally.Block, semaphore, model, cancellationToken).Any()));
    }

    private static StatementSyntax? FirstStatement(StatementSyntax statement) =>
        statement is BlockSyntax block ? block.Statements.FirstOrDefault() : statement;
}
