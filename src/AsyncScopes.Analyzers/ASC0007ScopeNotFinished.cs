using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0007: a scope in <c>await using</c> form that is disposed without the body saying it finished: a
/// <c>TaskScope</c> that starts children and reaches the end of its block (or a <c>return</c>) on some path without
/// <c>JoinAsync</c>, or an <c>AsyncExitStack</c> that enters context managers and never calls <c>Complete()</c>.
/// </summary>
/// <remarks>
/// Paths that leave by an exception are not reported: abandonment is what the library does then, on purpose. A scope
/// handed to another method counts as finished there.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0007ScopeNotFinished : DiagnosticAnalyzer
{
    /// <summary>The property naming the call the code fix adds: "JoinAsync" or "Complete".</summary>
    public const string CallProperty = "Call";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.ScopeNotFinished,
        "Finish a scope in await-using form",
        "{0}",
        Rules.Usage,
        "'await using' cannot tell DisposeAsync whether the block completed, so the library treats a scope disposed " +
        "without a word from the body as abandoned. A TaskScope disposed before JoinAsync cancels its children and " +
        "reports their failures as unobserved; an AsyncExitStack disposed without Complete() gives every exit a " +
        "ScopeAbandonedException, so a transaction rolls back. End the block with 'await scope.JoinAsync()' or " +
        "'stack.Complete()', or use the delegate form (TaskScope.RunAsync, AsyncExitStack.RunAsync).");

    private const int Started = 1;
    private const int Joined = 2;

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
            if (known.TaskScope is null || known.AsyncExitStack is null)
            {
                return;
            }

            start.RegisterSyntaxNodeAction(node => AnalyzeUsingStatement(node, known), SyntaxKind.UsingStatement);
            start.RegisterSyntaxNodeAction(node => AnalyzeUsingDeclaration(node, known), SyntaxKind.LocalDeclarationStatement);
        });
    }

    private static void AnalyzeUsingStatement(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var statement = (UsingStatementSyntax)context.Node;
        if (statement.AwaitKeyword.IsKind(SyntaxKind.AwaitKeyword) && statement.Declaration is { } declaration)
        {
            AnalyzeDeclaration(context, known, declaration, new[] { statement.Statement });
        }
    }

    private static void AnalyzeUsingDeclaration(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var statement = (LocalDeclarationStatementSyntax)context.Node;
        if (statement.AwaitKeyword.IsKind(SyntaxKind.AwaitKeyword) && statement.UsingKeyword.IsKind(SyntaxKind.UsingKeyword))
        {
            AnalyzeDeclaration(context, known, statement.Declaration, Regions.AfterStatement(statement));
        }
    }

    private static void AnalyzeDeclaration(SyntaxNodeAnalysisContext context, KnownTypes known, VariableDeclarationSyntax declaration, IReadOnlyList<StatementSyntax> region)
    {
        foreach (var variable in declaration.Variables)
        {
            if (variable.Initializer?.Value is not (BaseObjectCreationExpressionSyntax)
                || context.SemanticModel.GetDeclaredSymbol(variable, context.CancellationToken) is not ILocalSymbol local)
            {
                continue;
            }

            if (KnownTypes.Is(local.Type, known.TaskScope))
            {
                var walker = new JoinWalker(local, context.SemanticModel, context.CancellationToken);
                walker.WalkRegion(region, 0);
                if (!walker.GaveUp && PathWalker.States(walker.ExitStates).Any(state => (state & (Started | Joined)) == Started))
                {
                    Report(context, variable, "JoinAsync",
                        $"'{local.Name}' starts children but reaches the end of its block without 'await {local.Name}.JoinAsync()' on some path: disposal cancels them and nobody sees their failures");
                }
            }
            else if (KnownTypes.Is(local.Type, known.AsyncExitStack) && EntersWithoutComplete(local, region, context.SemanticModel, context.CancellationToken)
                && ReachesEnd(region))
            {
                Report(context, variable, "Complete",
                    $"'{local.Name}' enters context managers but never calls '{local.Name}.Complete()': every exit sees a ScopeAbandonedException, as if the block had failed");
            }
        }
    }

    private static void Report(SyntaxNodeAnalysisContext context, VariableDeclaratorSyntax variable, string call, string message)
    {
        var properties = ImmutableDictionary<string, string?>.Empty.Add(CallProperty, call);
        context.ReportDiagnostic(Diagnostic.Create(Rule, variable.Identifier.GetLocation(), properties, message));
    }

    /// <summary>True when some path through the region ends other than by throwing: a block that always throws abandons on purpose.</summary>
    private static bool ReachesEnd(IReadOnlyList<StatementSyntax> region)
    {
        var walker = new EndWalker();
        walker.WalkRegion(region, 0);
        return !walker.GaveUp && walker.ExitStates != 0;
    }

    private static bool EntersWithoutComplete(ILocalSymbol stack, IReadOnlyList<StatementSyntax> region, SemanticModel model, CancellationToken cancellationToken)
    {
        var entered = false;
        foreach (var statement in region)
        {
            foreach (var reference in Regions.References(statement, stack, model, cancellationToken))
            {
                if (Regions.IsHandedToMethod(reference, model, cancellationToken))
                {
                    return false;
                }

                switch (Regions.AccessedMember(reference))
                {
                    case "EnterAsync" or "PushExit":
                        entered = true;
                        break;
                    case "Complete" or "PopAll":
                        return false;
                    case null:
                        // Handed to other code, which may complete it.
                        return false;
                }
            }
        }

        return entered;
    }

    /// <summary>Follows the paths of a TaskScope's block: state bit 1 once a child was started, bit 2 once it was joined or handed on.</summary>
    private sealed class JoinWalker : PathWalker
    {
        private readonly ILocalSymbol _scope;
        private readonly SemanticModel _model;
        private readonly CancellationToken _cancellationToken;

        public JoinWalker(ILocalSymbol scope, SemanticModel model, CancellationToken cancellationToken)
            : base(throwLeaves: false)
        {
            _scope = scope;
            _model = model;
            _cancellationToken = cancellationToken;
        }

        protected override int Transfer(SyntaxNode node, int state)
        {
            foreach (var reference in Regions.References(node, _scope, _model, _cancellationToken))
            {
                if (Regions.IsHandedToMethod(reference, _model, _cancellationToken))
                {
                    state |= Joined;
                    continue;
                }

                state |= Regions.AccessedMember(reference) switch
                {
                    "Start" => Started,
                    "JoinAsync" => Joined,
                    null => Joined,
                    _ => 0,
                };
            }

            return state;
        }
    }

    /// <summary>Only tells whether some path ends without throwing.</summary>
    private sealed class EndWalker : PathWalker
    {
        public EndWalker()
            : base(throwLeaves: false)
        {
        }

        protected override int Transfer(SyntaxNode node, int state) => state;
    }
}
