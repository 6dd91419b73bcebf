using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0008: a <c>PoolLease&lt;T&gt;</c> (from <c>RentAsync</c> or <c>TryRent</c>), <c>TaskScope</c>, <c>AsyncExitStack</c>
/// or <c>WorkQueue&lt;T&gt;</c> created in a function, kept in a local and not disposed on every path out of its block,
/// or dropped at once.
/// </summary>
/// <remarks>
/// Disposed means <c>DisposeAsync</c>, or what ends the object as well: <c>JoinAsync</c> for a scope,
/// <c>ExitAsync</c> for a stack, <c>CompleteAsync</c> for a queue; or a <c>using</c>. Handing the object on (returning
/// it, storing it, passing it, capturing it in a lambda) moves the duty to dispose it. Paths are those the code
/// writes, <c>throw</c> included; an exception a call may throw is not followed.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0008ScopeNotDisposed : DiagnosticAnalyzer
{
    /// <summary>The property, present and "true", when the code fix may turn the declaration into an <c>await using</c>.</summary>
    public const string AwaitUsingProperty = "AwaitUsing";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.ScopeNotDisposed,
        "Dispose leases, scopes and work queues on every path",
        "The {0} created here {1}",
        Rules.Reliability,
        "A lease that is not returned keeps its pool item until the garbage collector finds it; a TaskScope or work " +
        "queue that is not disposed leaves its tasks running with nobody to wait for them; an exit stack that is not " +
        "disposed never runs its exits. Declare it with 'await using', or dispose it on every path.");

    private const int None = 0;
    private const int Pending = 1;
    private const int Done = 2;

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
            if (known.TaskScope is null || known.AsyncExitStack is null || known.WorkQueue is null || known.AsyncPool is null)
            {
                return;
            }

            start.RegisterSyntaxNodeAction(
                node => Analyze(node, known),
                SyntaxKind.ObjectCreationExpression,
                SyntaxKind.ImplicitObjectCreationExpression,
                SyntaxKind.AwaitExpression,
                SyntaxKind.InvocationExpression);
        });
    }

    private static void Analyze(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var model = context.SemanticModel;
        var cancellationToken = context.CancellationToken;
        var creation = (ExpressionSyntax)context.Node;
        if (Creates(creation, model, known, cancellationToken) is not { } created)
        {
            return;
        }

        if (created.Kind == CreatedKind.TryRent)
        {
            AnalyzeTryRent(context, (InvocationExpressionSyntax)creation, created);
            return;
        }

        var outer = creation;
        while (outer.Parent is ParenthesizedExpressionSyntax or PostfixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.SuppressNullableWarningExpression } or CastExpressionSyntax)
        {
            outer = (ExpressionSyntax)outer.Parent;
        }

        switch (outer.Parent)
        {
            case EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax { Parent: VariableDeclarationSyntax { Parent: LocalDeclarationStatementSyntax declaration } } variable }:
                if (!declaration.UsingKeyword.IsKind(SyntaxKind.UsingKeyword) && model.GetDeclaredSymbol(variable, cancellationToken) is ILocalSymbol local)
                {
                    Track(context, creation, created, local, declaration, isDeclaration: true);
                }

                return;
            case AssignmentExpressionSyntax { Parent: ExpressionStatementSyntax statement } assignment when assignment.Right == outer && assignment.IsKind(SyntaxKind.SimpleAssignmentExpression):
                switch (model.GetSymbolInfo(assignment.Left, cancellationToken).Symbol)
                {
                    case IDiscardSymbol:
                        ReportDropped(context, creation, created);
                        return;
                    case ILocalSymbol assigned when DeclaredInSameList(assigned, statement):
                        Track(context, creation, created, assigned, statement, isDeclaration: false);
                        return;
                    default:
                        return;
                }

            case AssignmentExpressionSyntax discard when discard.Right == outer
                && model.GetSymbolInfo(discard.Left, cancellationToken).Symbol is IDiscardSymbol:
                ReportDropped(context, creation, created);
                return;
            case ExpressionStatementSyntax:
                ReportDropped(context, creation, created);
                return;
            case MemberAccessExpressionSyntax access when access.Expression == outer && !Ends(created.Kind, access.Name.Identifier.ValueText):
                ReportDropped(context, creation, created);
                return;
        }
    }

    /// <summary>True when calling <paramref name="member"/> ends the object as disposing it would.</summary>
    private static bool Ends(CreatedKind kind, string member) => member switch
    {
        "DisposeAsync" or "Dispose" or "ConfigureAwait" => true,
        "JoinAsync" => kind == CreatedKind.TaskScope,
        "ExitAsync" => kind == CreatedKind.ExitStack,
        "CompleteAsync" => kind == CreatedKind.WorkQueue,
        _ => false,
    };

    private static void AnalyzeTryRent(SyntaxNodeAnalysisContext context, InvocationExpressionSyntax tryRent, Created created)
    {
        var argument = tryRent.ArgumentList.Arguments.FirstOrDefault(candidate => candidate.RefKindKeyword.IsKind(SyntaxKind.OutKeyword));
        if (argument is null)
        {
            return;
        }

        var symbol = argument.Expression switch
        {
            DeclarationExpressionSyntax { Designation: SingleVariableDesignationSyntax designation } => context.SemanticModel.GetDeclaredSymbol(designation, context.CancellationToken),
            DeclarationExpressionSyntax { Designation: DiscardDesignationSyntax } => null,
            var expression => context.SemanticModel.GetSymbolInfo(expression, context.CancellationToken).Symbol,
        };

        switch (symbol)
        {
            case null or IDiscardSymbol:
                // Dropped when a lease may be there: the result decides a branch, or nobody looks at it. Passed on
                // (Assert.False(pool.TryRent(out _))), the result says no lease is expected.
                if (tryRent.Parent is ExpressionStatementSyntax || (tryRent.Parent is IfStatementSyntax ifStatement && ifStatement.Condition == tryRent))
                {
                    ReportDropped(context, tryRent, created);
                }

                return;
            case ILocalSymbol local when Regions.ListedStatement(tryRent) is { } statement && DeclaredInSameList(local, statement, argument.Expression is DeclarationExpressionSyntax):
                Track(context, tryRent, created, local, statement, isDeclaration: false);
                return;
        }
    }

    private static bool DeclaredInSameList(ILocalSymbol local, StatementSyntax statement, bool declaredHere = false)
    {
        if (declaredHere)
        {
            return true;
        }

        var declaration = local.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax();
        var declaringStatement = declaration is null ? null : Regions.ListedStatement(declaration);
        return declaringStatement is not null && declaringStatement.Parent == statement.Parent;
    }

    private static void Track(SyntaxNodeAnalysisContext context, ExpressionSyntax creation, Created created, ILocalSymbol local, StatementSyntax statement, bool isDeclaration)
    {
        var region = Regions.FromStatement(statement);
        var walker = new DisposalWalker(local, creation, created.Kind, context.SemanticModel, context.CancellationToken);
        walker.WalkRegion(region, None);
        if (walker.GaveUp || !PathWalker.States(walker.ExitStates).Contains(Pending))
        {
            return;
        }

        var properties = ImmutableDictionary<string, string?>.Empty;
        if (isDeclaration && created.Kind != CreatedKind.TryRent && Functions.CanAwaitAt(statement)
            && OnlyUsedAsReceiver(local, region.Skip(1), context.SemanticModel, context.CancellationToken))
        {
            properties = properties.Add(AwaitUsingProperty, "true");
        }

        context.ReportDiagnostic(Diagnostic.Create(Rule, creation.GetLocation(), properties, created.Name, "is not disposed on every path: declare it with 'await using'"));
    }

    private static bool OnlyUsedAsReceiver(ILocalSymbol local, IEnumerable<StatementSyntax> statements, SemanticModel model, CancellationToken cancellationToken) =>
        statements.All(statement => Regions.References(statement, local, model, cancellationToken)
            .All(reference => Regions.AccessedMember(reference) is not null && !Regions.IsInNestedFunction(reference, statement)));

    private static void ReportDropped(SyntaxNodeAnalysisContext context, ExpressionSyntax creation, Created created)
    {
        // A lambda whose only statement creates and drops the object is the idiom of a test that construction throws.
        if (Regions.ListedStatement(creation) is { Parent: BlockSyntax { Statements.Count: 1, Parent: AnonymousFunctionExpressionSyntax } })
        {
            return;
        }

        context.ReportDiagnostic(Diagnostic.Create(Rule, creation.GetLocation(), created.Name, "is dropped without being disposed"));
    }

    private static Created? Creates(ExpressionSyntax node, SemanticModel model, KnownTypes known, CancellationToken cancellationToken)
    {
        switch (node)
        {
            case BaseObjectCreationExpressionSyntax:
                var type = model.GetTypeInfo(node, cancellationToken).Type;
                return KnownTypes.Is(type, known.TaskScope) ? new Created(CreatedKind.TaskScope, "TaskScope")
                    : KnownTypes.Is(type, known.AsyncExitStack) ? new Created(CreatedKind.ExitStack, "AsyncExitStack")
                    : KnownTypes.Is(type, known.WorkQueue) ? new Created(CreatedKind.WorkQueue, "WorkQueue")
                    : null;
            case AwaitExpressionSyntax awaitExpression:
                var awaited = awaitExpression.Expression;
                if (awaited is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "ConfigureAwait" } configure })
                {
                    awaited = configure.Expression;
                }

                return awaited is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "RentAsync" } }
                    && model.GetSymbolInfo(awaited, cancellationToken).Symbol is IMethodSymbol rent && KnownTypes.Is(rent.ContainingType, known.AsyncPool)
                    ? new Created(CreatedKind.Lease, "pool lease")
                    : null;
            case InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "TryRent" or "PopAll" } } invocation:
                if (model.GetSymbolInfo(invocation, cancellationToken).Symbol is not IMethodSymbol method)
                {
                    return null;
                }

                return method.Name == "TryRent" && KnownTypes.Is(method.ContainingType, known.AsyncPool) ? new Created(CreatedKind.TryRent, "pool lease")
                    : method.Name == "PopAll" && KnownTypes.Is(method.ContainingType, known.AsyncExitStack) ? new Created(CreatedKind.ExitStack, "AsyncExitStack")
                    : null;
            default:
                return null;
        }
    }

    private enum CreatedKind
    {
        Lease,
        TryRent,
        TaskScope,
        ExitStack,
        WorkQueue,
    }

    private sealed class Created
    {
        public Created(CreatedKind kind, string name)
        {
            Kind = kind;
            Name = name;
        }

        public CreatedKind Kind { get; }

        public string Name { get; }
    }

    /// <summary>Follows the paths after the creation: state 1 while the object waits for disposal, 2 once disposed or handed on.</summary>
    private sealed class DisposalWalker : PathWalker
    {
        private readonly ILocalSymbol _local;
        private readonly ExpressionSyntax _creation;
        private readonly CreatedKind _kind;
        private readonly SemanticModel _model;
        private readonly CancellationToken _cancellationToken;

        public DisposalWalker(ILocalSymbol local, ExpressionSyntax creation, CreatedKind kind, SemanticModel model, CancellationToken cancellationToken)
            : base(throwLeaves: true)
        {
            _local = local;
            _creation = creation;
            _kind = kind;
            _model = model;
            _cancellationToken = cancellationToken;
        }

        protected override (int WhenTrue, int WhenFalse) Condition(ExpressionSyntax condition, int states)
        {
            var bare = Strip(condition);
            var negated = false;
            if (bare is PrefixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.LogicalNotExpression } not)
            {
                bare = Strip(not.Operand);
                negated = true;
            }

            if (bare != _creation)
            {
                return base.Condition(condition, states);
            }

            // TryRent: a lease exists only when it returned true.
            var rented = Apply(condition, states);
            return negated ? (states, rented) : (rented, states);
        }

        protected override int Transfer(SyntaxNode node, int state)
        {
            foreach (var current in node.DescendantNodesAndSelf())
            {
                if (current == _creation)
                {
                    state = Pending;
                }
                else if (current is IdentifierNameSyntax identifier && identifier.Identifier.ValueText == _local.Name
                    && SymbolEqualityComparer.Default.Equals(_model.GetSymbolInfo(identifier, _cancellationToken).Symbol, _local))
                {
                    state = Reference(identifier, node, state);
                }
            }

            return state;
        }

        private int Reference(IdentifierNameSyntax identifier, SyntaxNode root, int state)
        {
            if (Regions.IsInNestedFunction(identifier, root) || Regions.IsUsingResource(identifier))
            {
                return Done;
            }

            if (identifier.Parent is AssignmentExpressionSyntax assignment && assignment.Left == identifier)
            {
                // Assigned the tracked object itself, or reassigned: from here on it is someone else's.
                return assignment.Right.DescendantNodesAndSelf().Contains(_creation) ? state : Done;
            }

            if (identifier.Parent is ArgumentSyntax argument && argument.Parent?.Parent == _creation)
            {
                return state;
            }

            // An extension method receives the object as an argument, which hands it on; a method of the type that only
            // its own assembly can call may end it (the library's internals).
            if (Regions.IsHandedToMethod(identifier, _model, _cancellationToken))
            {
                return Done;
            }

            return Regions.AccessedMember(identifier) is { } member && !Ends(_kind, member) ? state : Done;
        }

        private static ExpressionSyntax Strip(ExpressionSyntax expression)
        {
            while (expression is ParenthesizedExpressionSyntax parenthesized)
            {
                expression = parenthesized.Expression;
            }

            return expression;
        }
    }
}
