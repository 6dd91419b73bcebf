using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0013: a resource a function creates and drops at once, or creates into a local, or takes out of a registry (a WebSocket, a socket, a linked or
/// timed <c>CancellationTokenSource</c>, a timer, an <c>HttpListener</c>, rented memory, a stream, a database connection
/// or reader, any object with asynchronous disposal), that some path of the function's control flow graph neither
/// disposes nor hands on: never disposed, left behind by an early return or throw, overwritten in a loop, or disposed
/// after an await that can throw past it.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0013DisposableLocalNotDisposed : DiagnosticAnalyzer
{
    /// <summary>The property the fix reads: "using" or "await using" when it may declare the local so.</summary>
    public const string UsingProperty = "Using";

    /// <summary>The property the fix reads: where the disposal statement that the <c>using</c> replaces starts, if there is one.</summary>
    public const string RemoveProperty = "Remove";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.DisposableLocalNotDisposed,
        "Dispose a resource on every path",
        "'{0}' ({1}) {2}",
        Rules.Reliability,
        "A socket, WebSocket, timer, linked CancellationTokenSource, stream or database connection that a path leaves " +
        "undisposed stays open (or registered, or ticking) until the garbage collector finds it, which under load is " +
        "never soon enough. The rule follows the compiler's control flow graph from the creation: every path must " +
        "dispose the object (Dispose, DisposeAsync, Close where the type documents it as disposal, a using) or hand it " +
        "on (return it, store it, pass it to a method or constructor). An await that throws before the disposal counts " +
        "as a path, unless a catch or a finally that disposes the object stands in between.");

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Rule);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var resources = new TrackedResources(start.Compilation);
            start.RegisterOperationAction(operation => AnalyzeDropped(operation, resources), OperationKind.ObjectCreation, OperationKind.Invocation);
            start.RegisterOperationBlockAction(block =>
            {
                foreach (var operation in block.OperationBlocks)
                {
                    if (operation.Kind is OperationKind.MethodBody or OperationKind.ConstructorBody or OperationKind.Block
                        && operation.Descendants().Any(candidate => resources.Created(candidate) is not null || IsRemoval(candidate)))
                    {
                        // A program's entry point owns its objects for the whole process: only its lambdas and
                        // local functions are followed.
                        var model = operation.SemanticModel!;
                        var entryPoint = block.OwningSymbol is IMethodSymbol { IsStatic: true, Name: "Main" or "<Main>$" };
                        var graph = block.GetControlFlowGraph(operation);
                        if (!entryPoint)
                        {
                            Analyze(graph, model, resources, block.ReportDiagnostic, block.CancellationToken);
                        }

                        foreach (var nested in FunctionGraphs.Nested(graph, block.CancellationToken))
                        {
                            Analyze(nested, model, resources, block.ReportDiagnostic, block.CancellationToken);
                        }
                    }
                }
            });
        });
    }

    /// <summary>A resource created and dropped at once: a statement of its own (<c>new TcpClient(host, port);</c>) or a discard.</summary>
    private static void AnalyzeDropped(OperationAnalysisContext context, TrackedResources resources)
    {
        var outer = context.Operation;
        while (outer.Parent is IConversionOperation)
        {
            outer = outer.Parent;
        }

        var dropped = outer.Parent switch
        {
            // A lambda whose body only creates it is the idiom of a test that construction throws:
            // `Assert.Throws(() => new FileStream(bad, ...))`, `() => { new FileStream(bad, ...); }`.
            IExpressionStatementOperation => outer.Syntax.Parent is not LambdaExpressionSyntax
                && Regions.ListedStatement(outer.Syntax) is not { Parent: BlockSyntax { Statements.Count: 1, Parent: AnonymousFunctionExpressionSyntax } },
            ISimpleAssignmentOperation { Target: IDiscardOperation, Parent: IExpressionStatementOperation } discard => discard.Value == outer,
            _ => false,
        };
        if (dropped && resources.Created(context.Operation) is { } type)
        {
            context.ReportDiagnostic(Diagnostic.Create(Rule, context.Operation.Syntax.GetLocation(), context.Operation.Syntax.ToString(),
                type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat), "is dropped as soon as it is created: nothing disposes it"));
        }
    }

    /// <summary>Follows each tracked local of one graph (a lambda's or local function's graph is another).</summary>
    /// <remarks>Operations in a control flow graph carry no semantic model: <paramref name="model"/> is the block's.</remarks>
    private static void Analyze(ControlFlowGraph graph, SemanticModel model, TrackedResources resources, Action<Diagnostic> report, CancellationToken cancellationToken)
    {
        HashSet<ILocalSymbol>? captured = null;
        Dictionary<CaptureId, IOperation>? capturedValues = null;
        foreach (var block in graph.Blocks)
        {
            for (var index = 0; index < block.Operations.Length; index++)
            {
                if (FunctionGraphs.AssignedLocal(graph, block, index, ref capturedValues) is not var (local, value))
                {
                    continue;
                }

                if (resources.Created(value) is not { } created
                    || local.IsRef
                    || FunctionGraphs.DeclaredWithUsing(local, cancellationToken)
                    || FunctionGraphs.DeclaredOutside(local, graph, cancellationToken))
                {
                    continue;
                }

                captured ??= FunctionGraphs.CapturedLocals(graph.OriginalOperation.Syntax, model, cancellationToken);
                if (captured.Contains(local))
                {
                    continue; // a lambda or local function may dispose it; its paths are not these
                }

                if (resources.Known.DbConnection is { } connection && (KnownTypes.Is(created, connection) || KnownTypes.InheritsFrom(created, connection))
                    && ClosesConnectionWithReader(graph))
                {
                    continue; // CommandBehavior.CloseConnection: the reader owns the connection now
                }

                if (OwnershipFlow.Find(graph, block, index, local, invocation => resources.IsRelease(invocation, created), cancellationToken) is { } leak)
                {
                    Report(leak, local, created, value, model, resources, report);
                }
            }

            // A resource taken out of a registry (`if (_sockets.TryRemove(id, out var socket))`) is the taker's to close.
            if (TakenFromRegistry(block, resources) is var (taken, type, argument, whenTaken)
                && !taken.IsRef
                && !(captured ??= FunctionGraphs.CapturedLocals(graph.OriginalOperation.Syntax, model, cancellationToken)).Contains(taken)
                && OwnershipFlow.Find(graph, whenTaken, -1, taken, invocation => resources.IsRelease(invocation, type), cancellationToken) is { } takenLeak)
            {
                Report(takenLeak, taken, type, argument, model, resources, report);
            }
        }
    }

    private static bool IsRemoval(IOperation operation) =>
        operation is IInvocationOperation { TargetMethod.Name: "TryRemove" or "Remove" or "TryDequeue" or "TryTake" or "TryPop" } call
        && call.Arguments.Any(argument => argument.Parameter?.RefKind == RefKind.Out);

    /// <summary>
    /// When the block branches on <c>TryRemove</c>, <c>Remove</c>, <c>TryDequeue</c>, <c>TryTake</c> or <c>TryPop</c> of
    /// a collection that gives a tracked resource through an <c>out</c> local: that local, its type, the argument, and
    /// the block the branch goes to when the call returned true.
    /// </summary>
    private static (ILocalSymbol Local, ITypeSymbol Type, IOperation Argument, BasicBlock WhenTaken)? TakenFromRegistry(BasicBlock block, TrackedResources resources)
    {
        if (FunctionGraphs.Branch(block) is not var (condition, whenTaken)
            || !IsRemoval(condition)
            || ((IInvocationOperation)condition).Arguments.FirstOrDefault(argument => argument.Parameter?.RefKind == RefKind.Out) is not { } taken)
        {
            return null;
        }

        var target = taken.Value is IDeclarationExpressionOperation declaration ? declaration.Expression : taken.Value;
        return target is ILocalReferenceOperation { Local: var local } && resources.IsTrackedType(local.Type) ? (local, local.Type, taken, whenTaken) : null;
    }

    /// <summary>True when the function runs a reader with <c>CommandBehavior.CloseConnection</c>, which closes the connection when it is disposed.</summary>
    private static bool ClosesConnectionWithReader(ControlFlowGraph graph) =>
        graph.Blocks.SelectMany(block => block.Operations.Concat(block.BranchValue is null ? Enumerable.Empty<IOperation>() : new[] { block.BranchValue }))
            .SelectMany(operation => operation.DescendantsAndSelf())
            .OfType<IArgumentOperation>()
            .Any(argument => argument.Parameter?.Type.Name == "CommandBehavior" && argument.Value.ConstantValue is { HasValue: true, Value: { } behavior }
                && (Convert.ToInt64(behavior, System.Globalization.CultureInfo.InvariantCulture) & 32) != 0);

    private static void Report(Leak leak, ILocalSymbol local, ITypeSymbol type, IOperation creation, SemanticModel model, TrackedResources resources, Action<Diagnostic> report)
    {
        // Where it is lost: the await, or the whole statement that returns, throws or assigns.
        var at = leak.Kind == LeakKind.AwaitThrows ? leak.At?.Syntax : leak.At?.Syntax.FirstAncestorOrSelf<StatementSyntax>();
        var line = at is null ? 0 : at.GetLocation().GetLineSpan().StartLinePosition.Line + 1;
        var (message, fixable) = leak.Kind switch
        {
            LeakKind.Never => ("is never disposed", true),
            LeakKind.Exit when at is null => ("is not disposed on every path out of the function", true),
            LeakKind.Exit => ($"is not disposed on the path that leaves at line {line}", true),
            LeakKind.Overwritten => ($"is still undisposed when line {line} assigns '{local.Name}' again", false),
            _ => ($"is not disposed if the await at line {line} throws: dispose it in a finally, or declare it with 'using'", true),
        };

        var properties = ImmutableDictionary<string, string?>.Empty;
        if (fixable && FixKind(local, type, creation, model, resources) is { } fix)
        {
            properties = properties.Add(UsingProperty, fix.Kind);
            if (fix.Remove is { } remove)
            {
                properties = properties.Add(RemoveProperty, remove.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        var additional = at is null ? Array.Empty<Location>() : new[] { at.GetLocation() };
        report(Diagnostic.Create(Rule, creation.Syntax.GetLocation(), additional, properties, local.Name, type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat), message));
    }

    /// <summary>
    /// "await using" or "using" when the declaration can become one without changing what else the code does: a
    /// declaration of its own in a block, a variable never assigned again, and no disposal except, at most, one as the
    /// last statement of that block (which the fix removes).
    /// </summary>
    private static (string Kind, int? Remove)? FixKind(ILocalSymbol local, ITypeSymbol type, IOperation creation, SemanticModel model, TrackedResources resources)
    {
        if (creation.Syntax.Parent is not EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax { Parent: VariableDeclarationSyntax { Variables.Count: 1, Parent: LocalDeclarationStatementSyntax { Parent: BlockSyntax block } declaration } } })
        {
            return null;
        }

        // A method that returns its work without awaiting it would have the object disposed under the work (ASC0015).
        if (local.ContainingSymbol is IMethodSymbol { IsAsync: false } function && resources.Known.IsTaskLike(function.ReturnType))
        {
            return null;
        }

        int? remove = null;
        foreach (var identifier in block.DescendantNodes().OfType<IdentifierNameSyntax>())
        {
            if (identifier.Identifier.ValueText != local.Name || !SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(identifier).Symbol, local))
            {
                continue;
            }

            // Only its members used: anything else hands it on somewhere, which a using would dispose under the taker.
            var call = identifier.Parent switch
            {
                MemberAccessExpressionSyntax member when member.Expression == identifier => member.Parent as InvocationExpressionSyntax,
                ConditionalAccessExpressionSyntax conditional when conditional.Expression == identifier => conditional.WhenNotNull as InvocationExpressionSyntax,
                _ => null,
            };
            if (call is null && identifier.Parent is not MemberAccessExpressionSyntax { Parent: not InvocationExpressionSyntax })
            {
                return null;
            }

            if (call is not null && model.GetOperation(call) is IInvocationOperation invocation && resources.IsRelease(invocation, type))
            {
                if (FinalStatement(call, block) is not { } statement)
                {
                    return null;
                }

                remove = statement.SpanStart;
            }
        }

        // The declaration keeps its declared type: `await using` needs it async-disposable, `using` disposable.
        var declared = local.Type;
        if (Functions.CanAwaitAt(declaration) && resources.IsAsyncDisposable(declared))
        {
            return ("await using", remove);
        }

        return KnownTypes.Implements(declared, resources.Known.IDisposable) ? ("using", remove) : null;
    }

    /// <summary>The statement that <paramref name="release"/> is the whole of, when it is the last statement of <paramref name="block"/> or the one before a final return.</summary>
    private static ExpressionStatementSyntax? FinalStatement(SyntaxNode release, BlockSyntax block)
    {
        var statement = release.Parent is AwaitExpressionSyntax awaited ? awaited.Parent : release.Parent;
        if (statement is ConditionalAccessExpressionSyntax conditional)
        {
            statement = conditional.Parent;
        }

        if (statement is not ExpressionStatementSyntax expression || statement.Parent != block)
        {
            return null;
        }

        var statements = block.Statements;
        var last = statements.Count > 0 && statements[statements.Count - 1] is ReturnStatementSyntax && statements.Count > 1
            ? statements[statements.Count - 2]
            : statements.LastOrDefault();
        return last == statement ? expression : null;
    }
}
