using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0015: work that nobody awaits outlives what it runs on: a task returned from inside a <c>using</c> that disposes
/// a resource the work uses; a <c>Task.Factory.StartNew</c> of an async lambda whose inner task is dropped; a
/// background loop that a disposable type or hosted service starts and drops; a task that a synchronous
/// <c>Dispose</c> starts and drops.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0015WorkOutlivesItsOwner : DiagnosticAnalyzer
{
    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.WorkOutlivesItsOwner,
        "Await work before what it runs on ends",
        "{0}",
        Rules.Reliability,
        "Work that nobody awaits runs on after what it needs is gone: a resource disposed by the using the task was " +
        "returned from, a hosted service or disposable object stopped while its loop still runs, a Dispose that returns " +
        "before the close it started. What the work throws is lost too. Await it, or keep its task and await it where " +
        "its owner ends.");

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
            var taskFactory = start.Compilation.GetTypeByMetadataName("System.Threading.Tasks.TaskFactory");
            var hostedService = start.Compilation.GetTypeByMetadataName("Microsoft.Extensions.Hosting.IHostedService");
            start.RegisterOperationAction(operation => ReturnedFromUsing(operation, known), OperationKind.Return);
            start.RegisterOperationAction(
                operation =>
                {
                    var invocation = (IInvocationOperation)operation.Operation;
                    StartNewOfAsyncLambda(operation, invocation, known, taskFactory);
                    DroppedWork(operation, invocation, known, hostedService);
                },
                OperationKind.Invocation);
        });
    }

    /// <summary><c>using var connection = ...; return connection.QueryAsync(...);</c> in a method that is not async.</summary>
    private static void ReturnedFromUsing(OperationAnalysisContext context, KnownTypes known)
    {
        var returned = (IReturnOperation)context.Operation;
        if (returned.ReturnedValue is not { } value || OwnershipFlow.Strip(value) is not IInvocationOperation call
            || !known.IsTaskLike(call.Type) || IsAsync(returned, context.ContainingSymbol))
        {
            return;
        }

        foreach (var local in UsingLocals(returned).Where(local => !DisposesNothing(local.Type)))
        {
            var uses = Derived(local, returned, known);
            if (call.DescendantsAndSelf().OfType<ILocalReferenceOperation>().Any(reference => uses.Contains(reference.Local) && GoesWithTheWork(reference, call, known)))
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, call.Syntax.GetLocation(),
                    $"'{Describe(call)}' is returned from inside the using of '{local.Name}', which disposes it as soon as this returns, before the work ends: make the method async and await it"));
                return;
            }
        }
    }

    /// <summary>
    /// True when the work gets the object itself: it is the returned call's receiver, an argument, or the receiver of
    /// a call that gives a task; not a value read from it before the method returns (<c>Task.FromResult(s.Length)</c>).
    /// </summary>
    private static bool GoesWithTheWork(IOperation reference, IInvocationOperation call, KnownTypes known)
    {
        var current = reference;
        while (current.Parent is IConversionOperation conversion)
        {
            current = conversion;
        }

        return current.Parent switch
        {
            IArgumentOperation => true,
            IInvocationOperation invocation when invocation.Instance == current => invocation == call || known.IsTaskLike(invocation.Type),
            _ => false,
        };
    }

    /// <summary>
    /// The local and the locals of the function given a disposable object made from it (<c>var command =
    /// connection.CreateCommand()</c>); a value read from it (a count, a byte array) does not depend on it staying open.
    /// </summary>
    private static HashSet<ILocalSymbol> Derived(ILocalSymbol local, IOperation inside, KnownTypes known)
    {
        var root = inside;
        while (root.Parent is not null && root is not (IAnonymousFunctionOperation or ILocalFunctionOperation))
        {
            root = root.Parent;
        }

        var derived = new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default) { local };
        bool added;
        do
        {
            added = false;
            foreach (var operation in root.Descendants())
            {
                var (target, value) = operation switch
                {
                    IVariableDeclaratorOperation { Initializer.Value: var initial } declarator => (declarator.Symbol, initial),
                    ISimpleAssignmentOperation { Target: ILocalReferenceOperation assigned } assignment => (assigned.Local, assignment.Value),
                    _ => (null, null),
                };
                if (target is not null && value is not null && !derived.Contains(target)
                    && (KnownTypes.Implements(target.Type, known.IDisposable) || KnownTypes.Implements(target.Type, known.IAsyncDisposable))
                    && value.DescendantsAndSelf().OfType<ILocalReferenceOperation>().Any(reference => derived.Contains(reference.Local)))
                {
                    derived.Add(target);
                    added = true;
                }
            }
        }
        while (added);
        return derived;
    }

    /// <summary>A type of this compilation whose <c>Dispose()</c> has an empty body: disposing it early frees nothing.</summary>
    private static bool DisposesNothing(ITypeSymbol type) =>
        type.GetMembers("Dispose").OfType<IMethodSymbol>().Where(method => method.Parameters.Length == 0).ToList() is { Count: 1 } disposes
        && disposes[0].DeclaringSyntaxReferences.Length == 1
        && disposes[0].DeclaringSyntaxReferences[0].GetSyntax() is MethodDeclarationSyntax { Body.Statements.Count: 0, ExpressionBody: null }
        && type.GetMembers("DisposeAsync").IsEmpty;

    /// <summary>The locals of the <c>using</c> statements and declarations the return is inside or after, in its function.</summary>
    private static IEnumerable<ILocalSymbol> UsingLocals(IOperation operation)
    {
        var child = operation;
        for (var current = operation.Parent; current is not null && current is not (IAnonymousFunctionOperation or ILocalFunctionOperation); current = current.Parent)
        {
            switch (current)
            {
                case IUsingOperation @using when @using.Body == child:
                    foreach (var local in @using.Locals)
                    {
                        yield return local;
                    }

                    break;
                case IBlockOperation block:
                    foreach (var statement in block.Operations.TakeWhile(statement => statement != child))
                    {
                        if (statement is IUsingDeclarationOperation declaration)
                        {
                            foreach (var declarator in declaration.DeclarationGroup.Declarations.SelectMany(group => group.Declarators))
                            {
                                yield return declarator.Symbol;
                            }
                        }
                    }

                    break;
            }

            child = current;
        }
    }

    /// <summary><c>Task.Factory.StartNew(async () => ...)</c>: a <c>Task&lt;Task&gt;</c> whose outer task ends at the first await.</summary>
    private static void StartNewOfAsyncLambda(OperationAnalysisContext context, IInvocationOperation invocation, KnownTypes known, INamedTypeSymbol? taskFactory)
    {
        if (invocation.TargetMethod.Name != "StartNew" || taskFactory is null || !KnownTypes.Is(invocation.TargetMethod.ContainingType, taskFactory)
            || invocation.Type is not INamedTypeSymbol { TypeArguments.Length: 1 } outer || !known.IsTaskLike(outer.TypeArguments[0]))
        {
            return;
        }

        IOperation current = invocation;
        var parent = current.Parent;
        while (parent is IConversionOperation { Type: INamedTypeSymbol { IsGenericType: true } })
        {
            current = parent;
            parent = parent.Parent;
        }

        if (parent is IInvocationOperation { TargetMethod.Name: "ConfigureAwait" } configured && configured.Instance == current)
        {
            parent = configured.Parent; // await Task.Factory.StartNew(async () => ...).ConfigureAwait(false)
        }

        // Dropped as a whole (a statement, `_ =`), nothing waits for either task: that is the dropped-loop check's,
        // when the work is a loop its owner should wait for.
        var dropped = parent switch
        {
            IAwaitOperation { Parent: not IAwaitOperation } => true,
            IConversionOperation { Type: { } converted } => KnownTypes.Is(converted, known.Task), // kept or passed as a plain Task
            _ => false,
        };
        if (dropped)
        {
            context.ReportDiagnostic(Diagnostic.Create(Rule, invocation.Syntax.GetLocation(),
                "Task.Factory.StartNew of an async delegate gives a Task<Task> whose outer task completes at the delegate's first await: the work itself is not awaited; use Task.Run, or .Unwrap() the result"));
        }
    }

    /// <summary>A dropped task: a background loop a disposable type or hosted service starts, or work a synchronous Dispose starts.</summary>
    private static void DroppedWork(OperationAnalysisContext context, IInvocationOperation invocation, KnownTypes known, INamedTypeSymbol? hostedService)
    {
        if (!known.IsTaskLike(invocation.Type) || !IsDropped(invocation) || InNestedFunction(invocation)
            || invocation.TargetMethod.Name is "DisposeAsync" or "FromResult" or "FromException" or "FromCanceled")
        {
            return; // a dropped DisposeAsync is ASC0012's
        }

        // Work that uses the resource of a using it is dropped inside: the using disposes the resource under it. A
        // TaskScope or a work queue owns the work it is given (scope.Start(...)): its disposal waits for it.
        var givenToAnOwner = invocation.Instance is { Type: { } receiver } && OwnsItsWork(receiver, known);
        foreach (var local in UsingLocals(invocation).Where(local => !givenToAnOwner && !DisposesNothing(local.Type) && !OwnsItsWork(local.Type, known)))
        {
            var uses = Derived(local, invocation, known);
            uses.RemoveWhere(derived => OwnsItsWork(derived.Type, known));
            if (UsesAny(invocation, uses, known))
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, invocation.Syntax.GetLocation(),
                    $"'{Describe(invocation)}' uses '{local.Name}' and is dropped inside its using, which disposes it while the work may still run: await the task before the block ends"));
                return;
            }
        }

        if (context.ContainingSymbol is IMethodSymbol { IsAsync: false } method
            && (method.MethodKind == MethodKind.Destructor || (method.Name == "Dispose" && method.Parameters.Length <= 1)))
        {
            context.ReportDiagnostic(Diagnostic.Create(Rule, invocation.Syntax.GetLocation(),
                $"'{Describe(invocation)}' is started by a synchronous {(method.MethodKind == MethodKind.Destructor ? "finalizer" : "Dispose")} and dropped: the disposal returns before the work ends, and what it throws is lost; implement IAsyncDisposable and await it there"));
            return;
        }

        var type = context.ContainingSymbol.ContainingType;
        if (type is null)
        {
            return;
        }

        var owner = hostedService is not null && KnownTypes.Implements(type, hostedService) ? "a hosted service"
            : KnownTypes.Implements(type, known.IDisposable) || KnownTypes.Implements(type, known.IAsyncDisposable) ? "disposable"
            : null;
        if (owner is not null && StartsALoop(invocation, type))
        {
            context.ReportDiagnostic(Diagnostic.Create(Rule, invocation.Syntax.GetLocation(),
                $"'{type.Name}' is {owner}, but the background loop '{Describe(invocation)}' it starts is dropped: nothing waits for it when it stops, and what it throws is lost; keep its task and await it on {(owner == "disposable" ? "disposal" : "StopAsync")}"));
        }
    }

    private static bool OwnsItsWork(ITypeSymbol type, KnownTypes known) => KnownTypes.Is(type, known.TaskScope) || KnownTypes.Is(type, known.WorkQueue);

    /// <summary>
    /// True when the work gets one of <paramref name="locals"/> itself (its receiver or an argument, as a returned
    /// call does), or a delegate it runs captures one (<c>Task.Run(() => file.Write(data))</c>).
    /// </summary>
    private static bool UsesAny(IInvocationOperation invocation, HashSet<ILocalSymbol> locals, KnownTypes known) =>
        invocation.DescendantsAndSelf().OfType<ILocalReferenceOperation>().Any(reference => locals.Contains(reference.Local)
            && (GoesWithTheWork(reference, invocation, known) || InDelegateOf(reference, invocation)));

    private static bool InDelegateOf(IOperation reference, IInvocationOperation invocation)
    {
        for (var current = reference.Parent; current is not null && current != invocation; current = current.Parent)
        {
            if (current is IAnonymousFunctionOperation)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The call as the message names it: <c>socket.CloseAsync(...)</c>, <c>ReceiveLoopAsync()</c>.</summary>
    private static string Describe(IInvocationOperation invocation) => invocation.Syntax is InvocationExpressionSyntax call
        ? $"{call.Expression}({(call.ArgumentList.Arguments.Count > 0 ? "..." : string.Empty)})"
        : invocation.TargetMethod.Name + "(...)";

    /// <summary>A statement of its own, or <c>_ = ...</c>, with <c>.ConfigureAwait(...)</c> or not.</summary>
    private static bool IsDropped(IInvocationOperation invocation)
    {
        IOperation current = invocation;
        if (current.Parent is IInvocationOperation { TargetMethod.Name: "ConfigureAwait" } configured && configured.Instance == current)
        {
            current = configured;
        }

        var parent = current.Parent;
        while (parent is IConversionOperation)
        {
            current = parent;
            parent = parent.Parent;
        }

        return parent is IExpressionStatementOperation or ISimpleAssignmentOperation { Target: IDiscardOperation };
    }

    /// <summary>
    /// True when the call starts an async loop: <c>Task.Run</c> or <c>StartNew</c> of a delegate whose body has a loop
    /// with an await in it (or that calls such a method of the type), or a call of such a method of the type.
    /// </summary>
    private static bool StartsALoop(IInvocationOperation invocation, INamedTypeSymbol type)
    {
        if (invocation.TargetMethod.Name is "Run" or "StartNew")
        {
            foreach (var argument in invocation.Arguments)
            {
                var value = OwnershipFlow.Strip(argument.Value);
                if (value is IDelegateCreationOperation creation)
                {
                    value = creation.Target;
                }

                switch (value)
                {
                    case IAnonymousFunctionOperation lambda when HasAsyncLoop(lambda.Syntax)
                        || lambda.Body.Descendants().OfType<IInvocationOperation>().Any(call => IsLoopMethod(call.TargetMethod, type)):
                        return true;
                    case IMethodReferenceOperation reference when IsLoopMethod(reference.Method, type):
                        return true;
                }
            }

            return false;
        }

        return IsLoopMethod(invocation.TargetMethod, type);
    }

    private static bool IsLoopMethod(IMethodSymbol method, INamedTypeSymbol type) =>
        SymbolEqualityComparer.Default.Equals(method.ContainingType?.OriginalDefinition, type.OriginalDefinition)
        && method.DeclaringSyntaxReferences.Any(reference => HasAsyncLoop(reference.GetSyntax()));

    /// <summary>
    /// A <c>while</c>, <c>do</c>, <c>for</c> or <c>foreach</c> of the function (not of a nested one) with an await in
    /// it; but not the ticking loop of a <c>PeriodicTimer</c> whose whole body is a <c>try</c> with a catch-all: its
    /// owner stops it by disposing the timer, and it throws nothing.
    /// </summary>
    private static bool HasAsyncLoop(SyntaxNode function) =>
        Functions.OwnNodes(function).Any(node =>
            node is WhileStatementSyntax or DoStatementSyntax or ForStatementSyntax or CommonForEachStatementSyntax
            && (node is CommonForEachStatementSyntax { AwaitKeyword.RawKind: not 0 } || Functions.OwnNodes(node).OfType<AwaitExpressionSyntax>().Any())
            && !IsQuietTickLoop(node));

    private static bool IsQuietTickLoop(SyntaxNode loop) =>
        loop is WhileStatementSyntax { Condition: AwaitExpressionSyntax awaited } @while
        && awaited.DescendantNodes().OfType<MemberAccessExpressionSyntax>().Any(member => member.Name.Identifier.ValueText == "WaitForNextTickAsync")
        && (@while.Statement is BlockSyntax { Statements.Count: 1 } block ? block.Statements[0] : @while.Statement) is TryStatementSyntax attempt
        && attempt.Catches.Any(Functions.IsCatchAll);

    private static bool InNestedFunction(IOperation operation)
    {
        for (var current = operation.Parent; current is not null; current = current.Parent)
        {
            if (current is IAnonymousFunctionOperation or ILocalFunctionOperation)
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsAsync(IOperation operation, ISymbol containing)
    {
        for (var current = operation.Parent; current is not null; current = current.Parent)
        {
            switch (current)
            {
                case IAnonymousFunctionOperation lambda:
                    return lambda.Symbol.IsAsync;
                case ILocalFunctionOperation local:
                    return local.Symbol.IsAsync;
            }
        }

        return containing is IMethodSymbol { IsAsync: true };
    }
}
