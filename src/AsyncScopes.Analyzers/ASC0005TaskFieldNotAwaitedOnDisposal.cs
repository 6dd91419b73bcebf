using System.Collections.Concurrent;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0005: a disposable type keeps tasks it starts in a field (a task, or a collection or array of tasks), and its
/// disposal never looks at that field: the work outlives the object.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0005TaskFieldNotAwaitedOnDisposal : DiagnosticAnalyzer
{
    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.TaskFieldNotAwaitedOnDisposal,
        "Await on disposal the tasks a type keeps in fields",
        "'{0}' keeps tasks it starts in '{1}', but its disposal never awaits them",
        Rules.Reliability,
        "A disposable type that starts background work and keeps the task in a field must wait for it when it is " +
        "disposed: otherwise the work runs on after disposal, against resources that are gone, and what it throws is " +
        "never observed. Await the field (or Task.WhenAll over the collection) in DisposeAsync, after cancelling the work; " +
        "or let a TaskScope own the work. Dispose, DisposeAsync, DisposeAsyncCore, StopAsync and CloseAsync count as " +
        "disposal, with every method of the type they call.");

    private static readonly ImmutableHashSet<string> DisposalMethods =
        ImmutableHashSet.Create(StringComparer.Ordinal, "Dispose", "DisposeAsync", "DisposeAsyncCore", "StopAsync", "CloseAsync");

    private static readonly ImmutableHashSet<string> CollectionAdds =
        ImmutableHashSet.Create(StringComparer.Ordinal, "Add", "TryAdd", "Enqueue", "Push", "Insert", "AddRange", "AddOrUpdate", "GetOrAdd");

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

            start.RegisterSymbolStartAction(symbolStart => AnalyzeType(symbolStart, known), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolStartAnalysisContext context, KnownTypes known)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        if (type.TypeKind is not (TypeKind.Class or TypeKind.Struct)
            || !(KnownTypes.Implements(type, known.IDisposable) || KnownTypes.Implements(type, known.IAsyncDisposable)))
        {
            return;
        }

        var taskFields = type.GetMembers().OfType<IFieldSymbol>()
            .Where(field => !field.IsStatic && !field.IsConst && HoldsTasks(field.Type, known))
            .ToImmutableHashSet<IFieldSymbol>(SymbolEqualityComparer.Default);
        if (taskFields.IsEmpty)
        {
            return;
        }

        var started = new ConcurrentDictionary<IFieldSymbol, bool>(SymbolEqualityComparer.Default);
        var readBy = new ConcurrentDictionary<(ISymbol Method, IFieldSymbol Field), bool>();
        var calls = new ConcurrentDictionary<(ISymbol Caller, ISymbol Callee), bool>();

        context.RegisterOperationAction(
            operation =>
            {
                var reference = (IFieldReferenceOperation)operation.Operation;
                var field = reference.Field.OriginalDefinition;
                if (!taskFields.Contains(field) || operation.ContainingSymbol is not { } method)
                {
                    return;
                }

                if (IsStartedTaskStored(reference))
                {
                    started.TryAdd(field, true);
                }
                else
                {
                    readBy.TryAdd((method, field), true);
                }
            },
            OperationKind.FieldReference);

        context.RegisterOperationAction(
            operation =>
            {
                var initializer = (IFieldInitializerOperation)operation.Operation;
                if (IsStarted(initializer.Value))
                {
                    foreach (var field in initializer.InitializedFields)
                    {
                        if (taskFields.Contains(field.OriginalDefinition))
                        {
                            started.TryAdd(field.OriginalDefinition, true);
                        }
                    }
                }
            },
            OperationKind.FieldInitializer);

        context.RegisterOperationAction(
            operation =>
            {
                var invocation = (IInvocationOperation)operation.Operation;
                if (operation.ContainingSymbol is { } caller
                    && SymbolEqualityComparer.Default.Equals(invocation.TargetMethod.ContainingType.OriginalDefinition, type.OriginalDefinition))
                {
                    calls.TryAdd((caller, invocation.TargetMethod.OriginalDefinition), true);
                }
            },
            OperationKind.Invocation);

        context.RegisterSymbolEndAction(end =>
        {
            var disposal = DisposalClosure(type, calls.Keys);
            foreach (var field in taskFields)
            {
                if (!started.ContainsKey(field) || readBy.Keys.Any(read => SymbolEqualityComparer.Default.Equals(read.Field, field) && disposal.Contains(read.Method)))
                {
                    continue;
                }

                var location = field.AssociatedSymbol?.Locations.FirstOrDefault() ?? field.Locations.FirstOrDefault();
                if (location is not null && location.IsInSource)
                {
                    end.ReportDiagnostic(Diagnostic.Create(Rule, location, type.Name, field.AssociatedSymbol?.Name ?? field.Name));
                }
            }
        });
    }

    /// <summary>A task, or an array or collection of tasks.</summary>
    private static bool HoldsTasks(ITypeSymbol type, KnownTypes known)
    {
        if (known.IsTaskLike(type))
        {
            return true;
        }

        if (type is IArrayTypeSymbol array)
        {
            return known.IsTaskLike(array.ElementType);
        }

        return type.AllInterfaces.Any(@interface =>
            @interface.OriginalDefinition.SpecialType == SpecialType.System_Collections_Generic_IEnumerable_T
            && (known.IsTaskLike(@interface.TypeArguments[0])
                || (@interface.TypeArguments[0] is INamedTypeSymbol { IsGenericType: true } pair && pair.TypeArguments.Any(known.IsTaskLike))));
    }

    /// <summary>
    /// True when this reference stores work the type started: the field is assigned a call's result, or a call's
    /// result is added to the collection it holds.
    /// </summary>
    private static bool IsStartedTaskStored(IFieldReferenceOperation reference)
    {
        switch (reference.Parent)
        {
            case ISimpleAssignmentOperation assignment when assignment.Target == reference:
                return IsStarted(assignment.Value);
            case IInvocationOperation invocation when invocation.Instance == reference && CollectionAdds.Contains(invocation.TargetMethod.Name):
                return invocation.Arguments.Any(argument => IsStarted(argument.Value));
            case IArrayElementReferenceOperation element when element.Parent is ISimpleAssignmentOperation assignment && assignment.Target == element:
                return IsStarted(assignment.Value);
            default:
                return false;
        }
    }

    /// <summary>A call (or a collection of calls) that produces running work, as opposed to a task handed in or a completed one.</summary>
    private static bool IsStarted(IOperation? value)
    {
        while (value is IConversionOperation conversion)
        {
            value = conversion.Operand;
        }

        return value switch
        {
            IInvocationOperation invocation => invocation.TargetMethod.Name is not ("FromResult" or "FromException" or "FromCanceled"),
            IArrayCreationOperation { Initializer: { } initializer } => initializer.ElementValues.Any(IsStarted),
            IObjectCreationOperation { Initializer: { } initializer } => initializer.Initializers.Any(IsStarted),
            ICollectionExpressionOperation collection => collection.Elements.Any(IsStarted),
            _ => false,
        };
    }

    private static HashSet<ISymbol> DisposalClosure(INamedTypeSymbol type, IEnumerable<(ISymbol Caller, ISymbol Callee)> calls)
    {
        var byCaller = calls.ToLookup(call => call.Caller, call => call.Callee, SymbolEqualityComparer.Default);
        var closure = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
        var pending = new Stack<ISymbol>(type.GetMembers().OfType<IMethodSymbol>().Where(method =>
            DisposalMethods.Contains(method.Name)
            || method.ExplicitInterfaceImplementations.Any(implemented => DisposalMethods.Contains(implemented.Name))));
        while (pending.Count > 0)
        {
            var method = pending.Pop();
            if (!closure.Add(method))
            {
                continue;
            }

            foreach (var callee in byCaller[method])
            {
                pending.Push(callee);
            }
        }

        return closure;
    }
}
