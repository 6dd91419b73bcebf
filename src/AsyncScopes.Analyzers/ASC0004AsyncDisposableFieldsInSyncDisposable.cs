using System.Collections.Concurrent;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0004: a type disposes fields whose <c>DisposeAsync</c> does asynchronous work, but implements only
/// <c>IDisposable</c>: its owners can only dispose it synchronously, so that work is always blocked on.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0004AsyncDisposableFieldsInSyncDisposable : DiagnosticAnalyzer
{
    /// <summary>The property holding the names of the async-disposable fields, separated by commas, for the code fix.</summary>
    public const string FieldsProperty = "Fields";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.AsyncDisposableFieldsInSyncDisposable,
        "A type that owns async-disposable fields should be async-disposable",
        "'{0}' disposes {1}, whose DisposeAsync does asynchronous work, but implements only IDisposable: implement IAsyncDisposable",
        Rules.Reliability,
        "A type that owns async-disposable objects and implements only IDisposable forces every owner to dispose it " +
        "synchronously, which blocks on the asynchronous work of its fields' disposal. Implement IAsyncDisposable too, " +
        "with a DisposeAsync that awaits each field's DisposeAsync. A field counts as owned when the type disposes it.");

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

            start.RegisterSymbolStartAction(symbolStart => AnalyzeType(symbolStart, known), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolStartAnalysisContext context, KnownTypes known)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        if (type.TypeKind is not (TypeKind.Class or TypeKind.Struct)
            || !KnownTypes.Implements(type, known.IDisposable)
            || KnownTypes.Implements(type, known.IAsyncDisposable))
        {
            return;
        }

        var disposed = new ConcurrentDictionary<ISymbol, bool>(SymbolEqualityComparer.Default);
        var held = new ConcurrentDictionary<ISymbol, ConcurrentBag<ITypeSymbol>>(SymbolEqualityComparer.Default);
        context.RegisterOperationAction(
            operation =>
            {
                var invocation = (IInvocationOperation)operation.Operation;
                if (invocation.TargetMethod is not { Name: "Dispose", Parameters.Length: 0 })
                {
                    return;
                }

                if (OwnMember(invocation.Instance, type) is { } member)
                {
                    disposed.TryAdd(member, true);
                }
            },
            OperationKind.Invocation);

        // What a member typed Stream holds is decided where it is given a value: its initializer and its assignments.
        context.RegisterOperationAction(
            operation =>
            {
                var (member, value) = operation.Operation switch
                {
                    IFieldInitializerOperation { InitializedFields.Length: 1 } initializer => ((ISymbol)initializer.InitializedFields[0], initializer.Value),
                    ISimpleAssignmentOperation { Target: IFieldReferenceOperation field } assignment => (field.Field, assignment.Value),
                    _ => (null, null),
                };
                if (member is not null && value is not null && OwnershipFlow.Strip(value).Type is { } valueType)
                {
                    held.GetOrAdd(member, _ => new ConcurrentBag<ITypeSymbol>()).Add(valueType);
                }
            },
            OperationKind.FieldInitializer,
            OperationKind.SimpleAssignment);

        context.RegisterSymbolEndAction(end =>
        {
            foreach (var member in disposed.Keys.ToList())
            {
                var declared = MemberType(member);
                var doesAsyncWork = KnownTypes.Is(declared, known.Stream) && held.TryGetValue(member, out var values)
                    ? values.Any(value => AsyncDisposal.DoesAsyncWork(value, known))
                    : AsyncDisposal.DoesAsyncWork(declared, known);
                if (!doesAsyncWork)
                {
                    disposed.TryRemove(member, out _);
                }
            }

            if (disposed.IsEmpty)
            {
                return;
            }

            var names = disposed.Keys.Select(member => member.Name).OrderBy(name => name, StringComparer.Ordinal).ToList();
            var location = type.DeclaringSyntaxReferences
                .Select(reference => reference.GetSyntax(end.CancellationToken))
                .OfType<TypeDeclarationSyntax>()
                .Select(declaration => declaration.Identifier.GetLocation())
                .FirstOrDefault();
            if (location is null)
            {
                return;
            }

            var properties = ImmutableDictionary<string, string?>.Empty.Add(FieldsProperty, string.Join(",", names));
            var described = string.Join(", ", names.Select(name => "'" + name + "'"));
            end.ReportDiagnostic(Diagnostic.Create(Rule, location, properties, type.Name, described));
        });
    }

    /// <summary>The field or auto-property of <paramref name="type"/> that <paramref name="instance"/> reads on this object.</summary>
    private static ISymbol? OwnMember(IOperation? instance, INamedTypeSymbol type)
    {
        if (instance is IConditionalAccessInstanceOperation)
        {
            for (var current = instance.Parent; current is not null; current = current.Parent)
            {
                if (current is IConditionalAccessOperation conditional)
                {
                    instance = conditional.Operation;
                    break;
                }
            }
        }

        ISymbol? member;
        IOperation? owner;
        switch (instance)
        {
            case IFieldReferenceOperation field:
                member = field.Field;
                owner = field.Instance;
                break;
            case IPropertyReferenceOperation property when IsAutoProperty(property.Property):
                member = property.Property;
                owner = property.Instance;
                break;
            default:
                return null;
        }

        return !member.IsStatic && SymbolEqualityComparer.Default.Equals(member.ContainingType, type)
            && owner is IInstanceReferenceOperation
            ? member
            : null;
    }

    private static bool IsAutoProperty(IPropertySymbol property) =>
        property.ContainingType.GetMembers().OfType<IFieldSymbol>().Any(field => SymbolEqualityComparer.Default.Equals(field.AssociatedSymbol, property));

    private static ITypeSymbol? MemberType(ISymbol member) => member switch
    {
        IFieldSymbol field => field.Type,
        IPropertySymbol property => property.Type,
        _ => null,
    };
}
