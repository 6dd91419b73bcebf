using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0014: a private field that its class fills with a resource it creates (the objects ASC0013 tracks) and that
/// nothing disposes: the class is not disposable and no method of it releases the field; the class is disposable but
/// its disposal never reaches the field; its <c>DisposeAsync</c> forgets a field that its <c>Dispose</c> disposes; or a
/// loop (a reconnect loop) gives the field a new object without releasing the one it holds.
/// </summary>
/// <remarks>
/// Releasing is what ASC0013 counts as disposing or handing on (<c>_socket?.Dispose()</c>, <c>Close()</c> where it is
/// disposal, passing the field to a method, <c>Interlocked.Exchange(ref _timer, null)</c>, copying it into a local),
/// in the method itself or in any method of the class it calls. A field released anywhere in a class that is not
/// disposable (a <c>Stop</c> method) is left alone.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0014OwnedFieldNotDisposed : DiagnosticAnalyzer
{
    /// <summary>
    /// The property the fix reads on a field replaced in a loop: "await" or "dispose", how to dispose the object the
    /// field holds in a statement before the assignment; absent when the fix cannot write one.
    /// </summary>
    public const string DisposeOldProperty = "DisposeOld";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.OwnedFieldNotDisposed,
        "Dispose the resources a class keeps in its fields",
        "'{0}' ({1}) {2}",
        Rules.Reliability,
        "A class that creates a socket, WebSocket, timer, linked token source, stream or connection and keeps it in a " +
        "field owns it: its disposal must dispose the field, and a method that replaces the object (a reconnect) must " +
        "dispose the old one first. Otherwise the object stays open, registered or ticking until the garbage collector " +
        "finds it, once per instance or once per reconnect.");

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
            start.RegisterSymbolStartAction(symbolStart => AnalyzeType(symbolStart, resources), SymbolKind.NamedType);
        });
    }

    private static void AnalyzeType(SymbolStartAnalysisContext context, TrackedResources resources)
    {
        var type = (INamedTypeSymbol)context.Symbol;
        if (type.TypeKind != TypeKind.Class || type.IsStatic
            || !type.GetMembers().OfType<IFieldSymbol>().Any(field => field is { IsStatic: false, DeclaredAccessibility: Accessibility.Private, IsImplicitlyDeclared: false }))
        {
            return;
        }

        if (IsSingleton(type))
        {
            return; // its one instance lives as long as the static field that holds it: as the process
        }

        var facts = new TypeFacts(type, resources);
        context.RegisterOperationAction(
            operation => facts.Assignment(operation.Operation, operation.ContainingSymbol),
            OperationKind.SimpleAssignment,
            OperationKind.CoalesceAssignment,
            OperationKind.FieldInitializer);
        context.RegisterOperationAction(operation => facts.FieldReference((IFieldReferenceOperation)operation.Operation, operation.ContainingSymbol), OperationKind.FieldReference);
        context.RegisterOperationAction(operation => facts.Invocation((IInvocationOperation)operation.Operation, operation.ContainingSymbol), OperationKind.Invocation);
        context.RegisterSymbolEndAction(end => facts.Report(end.ReportDiagnostic));
    }

    /// <summary>A class whose constructors are all private and that keeps an instance of itself in a static field or property.</summary>
    private static bool IsSingleton(INamedTypeSymbol type) =>
        type.InstanceConstructors.All(constructor => constructor.DeclaredAccessibility == Accessibility.Private)
        && type.GetMembers().Any(member => member is IFieldSymbol { IsStatic: true } field && SymbolEqualityComparer.Default.Equals(field.Type, type)
            || member is IPropertySymbol { IsStatic: true } property && SymbolEqualityComparer.Default.Equals(property.Type, type));

    /// <summary>What the operations of one class say about its fields, gathered concurrently and judged at the end.</summary>
    private sealed class TypeFacts
    {
        private static readonly string[] EndingWords = { "Dispose", "Close", "Release", "Return", "Exchange" };

        private readonly object _gate = new();
        private readonly INamedTypeSymbol _type;
        private readonly TrackedResources _resources;
        private readonly Dictionary<IFieldSymbol, List<Creation>> _creations = new(SymbolEqualityComparer.Default);
        private readonly Dictionary<ISymbol, HashSet<IFieldSymbol>> _releases = new(SymbolEqualityComparer.Default);
        private readonly Dictionary<ISymbol, HashSet<IFieldSymbol>> _disposals = new(SymbolEqualityComparer.Default);
        private readonly Dictionary<ISymbol, HashSet<ISymbol>> _calls = new(SymbolEqualityComparer.Default);
        private readonly List<(ISymbol Callee, ILoopOperation Loop, ISymbol Caller)> _callsInLoops = new();

        public TypeFacts(INamedTypeSymbol type, TrackedResources resources)
        {
            _type = type;
            _resources = resources;
        }

        public void Assignment(IOperation operation, ISymbol method)
        {
            var (target, value, lazy) = operation switch
            {
                ISimpleAssignmentOperation simple => (simple.Target as IFieldReferenceOperation, simple.Value, false),
                ICoalesceAssignmentOperation coalesce => (coalesce.Target as IFieldReferenceOperation, coalesce.Value, true),
                IFieldInitializerOperation { InitializedFields.Length: 1 } initializer => (null, initializer.Value, false),
                _ => (null, null, false),
            };
            var field = target?.Field ?? (operation as IFieldInitializerOperation)?.InitializedFields[0];
            if (field is null || value is null || !Owns(field, target) || _resources.Created(value) is not { } created)
            {
                return;
            }

            var inConstructor = operation is IFieldInitializerOperation || method is IMethodSymbol { MethodKind: MethodKind.Constructor };
            var creation = new Creation(operation, method, created, inConstructor || lazy || GuardedByNullCheck(operation, field) || ReleasedBefore(operation, field), Loop(operation));
            lock (_gate)
            {
                if (!_creations.TryGetValue(field, out var list))
                {
                    _creations[field] = list = new List<Creation>();
                }

                list.Add(creation);
            }
        }

        public void FieldReference(IFieldReferenceOperation reference, ISymbol method)
        {
            if (Owns(reference.Field, reference) && Releases(reference, _resources, strict: false))
            {
                var disposes = Releases(reference, _resources, strict: true);
                lock (_gate)
                {
                    Set(_releases, method).Add(reference.Field);
                    if (disposes)
                    {
                        Set(_disposals, method).Add(reference.Field);
                    }
                }
            }
        }

        public void Invocation(IInvocationOperation invocation, ISymbol method)
        {
            // Only calls on this object (or static ones): another instance's method works on that instance's fields.
            var callee = invocation.TargetMethod.OriginalDefinition;
            if (!SymbolEqualityComparer.Default.Equals(callee.ContainingType, _type)
                || invocation.Instance is not (null or IInstanceReferenceOperation { ReferenceKind: InstanceReferenceKind.ContainingTypeInstance }))
            {
                return;
            }

            var loop = Loop(invocation);
            lock (_gate)
            {
                Set(_calls, method).Add(callee);
                if (loop is not null)
                {
                    _callsInLoops.Add((callee, loop, method));
                }
            }
        }

        public void Report(Action<Diagnostic> report)
        {
            var disposable = KnownTypes.Implements(_type, _resources.Known.IDisposable) || KnownTypes.Implements(_type, _resources.Known.IAsyncDisposable);
            var syncEntries = Entries("Dispose");
            var asyncEntries = Entries("DisposeAsync", "DisposeAsyncCore");
            var everywhere = new HashSet<IFieldSymbol>(_releases.Values.SelectMany(fields => fields), SymbolEqualityComparer.Default);
            var bySync = ReleasedFrom(syncEntries, _releases);
            var byAsync = ReleasedFrom(asyncEntries, _releases);
            foreach (var pair in _creations)
            {
                var field = pair.Key;
                pair.Value.Sort((left, right) => string.CompareOrdinal(left.Operation.Syntax.SyntaxTree.FilePath, right.Operation.Syntax.SyntaxTree.FilePath) is var byFile and not 0
                    ? byFile
                    : left.Operation.Syntax.SpanStart.CompareTo(right.Operation.Syntax.SpanStart)); // the first in the source, not the first callback
                var first = pair.Value[0];
                var typeName = first.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat);
                var location = field.Locations.FirstOrDefault() ?? first.Operation.Syntax.GetLocation();
                if (!everywhere.Contains(field))
                {
                    var message = disposable
                        ? $"is created by '{_type.Name}', whose disposal never disposes it"
                        : $"is created by '{_type.Name}', which is not disposable: nothing disposes it";
                    report(Diagnostic.Create(Rule, location, field.Name, typeName, message));
                }
                else if (syncEntries.Count > 0 && asyncEntries.Count > 0 && bySync.Contains(field) && !byAsync.Contains(field))
                {
                    report(Diagnostic.Create(Rule, location, field.Name, typeName, "is disposed by Dispose but not by DisposeAsync, which owners that await call instead"));
                }

                foreach (var creation in pair.Value)
                {
                    if (!creation.Covered && RunsAgain(creation, field))
                    {
                        var properties = OldValueDisposal(creation.Operation, field) is { } disposal
                            ? ImmutableDictionary<string, string?>.Empty.Add(DisposeOldProperty, disposal)
                            : ImmutableDictionary<string, string?>.Empty;
                        report(Diagnostic.Create(Rule, creation.Operation.Syntax.GetLocation(), properties, field.Name, typeName,
                            "is replaced by a new object, in a loop or in a method a loop calls, without disposing the one it holds"));
                    }
                }
            }
        }

        /// <summary>
        /// How the fix disposes the old object: "await" (<c>DisposeAsync</c>) where the assignment can await and the
        /// field's type is async-disposable, else "dispose"; null when the assignment is not a statement of a block,
        /// or the field's type is a value type or has no disposal to call there.
        /// </summary>
        private string? OldValueDisposal(IOperation assignment, IFieldSymbol field)
        {
            // Not when the new object is made from the old one (CreateLinkedTokenSource(_cts.Token), new BufferedStream(_s)).
            if (assignment.Syntax.Parent is not ExpressionStatementSyntax { Parent: BlockSyntax } statement || !field.Type.IsReferenceType
                || assignment is not ISimpleAssignmentOperation { Value: var value }
                || value.DescendantsAndSelf().OfType<IFieldReferenceOperation>().Any(reference => SymbolEqualityComparer.Default.Equals(reference.Field, field)))
            {
                return null;
            }

            // A method the fix can call by name: not an explicit interface implementation.
            if (Functions.CanAwaitAt(statement) && _resources.IsAsyncDisposable(field.Type) && HasPublicMethod(field.Type, "DisposeAsync"))
            {
                return "await";
            }

            return KnownTypes.Implements(field.Type, _resources.Known.IDisposable) && HasPublicMethod(field.Type, "Dispose") ? "dispose" : null;
        }

        private static bool HasPublicMethod(ITypeSymbol type, string name)
        {
            var types = type.TypeKind == TypeKind.Interface ? new[] { type }.Concat(type.AllInterfaces) : Bases(type);
            return types.Any(candidate => candidate.GetMembers(name).OfType<IMethodSymbol>()
                .Any(method => method.Parameters.Length == 0 && (method.DeclaredAccessibility == Accessibility.Public || candidate.TypeKind == TypeKind.Interface)));

            static IEnumerable<ITypeSymbol> Bases(ITypeSymbol type)
            {
                for (ITypeSymbol? current = type; current is not null; current = current.BaseType)
                {
                    yield return current;
                }
            }
        }

        /// <summary>True when a loop runs the assignment more than once and nothing in the loop releases the field.</summary>
        private bool RunsAgain(Creation creation, IFieldSymbol field)
        {
            if (creation.Loop is { } loop)
            {
                return !LoopReleases(loop, field, creation.Method);
            }

            return _callsInLoops.Any(call => Reaches(call.Callee, creation.Method) && !LoopReleases(call.Loop, field, call.Caller));
        }

        private bool LoopReleases(ILoopOperation loop, IFieldSymbol field, ISymbol method)
        {
            foreach (var operation in loop.Descendants())
            {
                switch (operation)
                {
                    case IFieldReferenceOperation reference when SymbolEqualityComparer.Default.Equals(reference.Field, field) && Releases(reference, _resources, strict: true):
                        return true;
                    case IInvocationOperation invocation when SymbolEqualityComparer.Default.Equals(invocation.TargetMethod.ContainingType, _type)
                        && invocation.Instance is null or IInstanceReferenceOperation
                        && ReleasedFrom(new List<ISymbol> { invocation.TargetMethod.OriginalDefinition }, _disposals).Contains(field):
                        return true;
                }
            }

            return false;
        }

        private bool Reaches(ISymbol from, ISymbol to)
        {
            var seen = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
            var pending = new Stack<ISymbol>();
            pending.Push(from);
            while (pending.Count > 0)
            {
                var current = pending.Pop();
                if (SymbolEqualityComparer.Default.Equals(current, to))
                {
                    return true;
                }

                if (seen.Add(current) && _calls.TryGetValue(current, out var callees))
                {
                    foreach (var callee in callees)
                    {
                        pending.Push(callee);
                    }
                }
            }

            return false;
        }

        /// <summary>The fields released by the methods, or by any method of the class they call, as <paramref name="releases"/> counts them.</summary>
        private HashSet<IFieldSymbol> ReleasedFrom(List<ISymbol> methods, Dictionary<ISymbol, HashSet<IFieldSymbol>> releases)
        {
            var released = new HashSet<IFieldSymbol>(SymbolEqualityComparer.Default);
            var seen = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
            var pending = new Stack<ISymbol>(methods);
            while (pending.Count > 0)
            {
                var current = pending.Pop();
                if (!seen.Add(current))
                {
                    continue;
                }

                if (releases.TryGetValue(current, out var fields))
                {
                    released.UnionWith(fields);
                }

                if (_calls.TryGetValue(current, out var callees))
                {
                    foreach (var callee in callees)
                    {
                        pending.Push(callee);
                    }
                }
            }

            return released;
        }

        /// <summary>The class's own disposal methods with these names (<c>Dispose()</c> and <c>Dispose(bool)</c>, and so on).</summary>
        private List<ISymbol> Entries(params string[] names) =>
            _type.GetMembers().OfType<IMethodSymbol>().Where(method => names.Contains(method.Name) && !method.IsStatic && method.Parameters.Length <= 1)
                .Cast<ISymbol>().ToList();

        /// <summary>A private instance field of this class, reached through <c>this</c> (or written in its initializer).</summary>
        private bool Owns(IFieldSymbol field, IFieldReferenceOperation? reference) =>
            field is { IsStatic: false, DeclaredAccessibility: Accessibility.Private }
            && SymbolEqualityComparer.Default.Equals(field.ContainingType.OriginalDefinition, _type)
            && (reference is null || reference.Instance is IInstanceReferenceOperation { ReferenceKind: InstanceReferenceKind.ContainingTypeInstance });

        /// <summary>
        /// What ASC0013 counts as disposing or handing on, for a reference to the field. <paramref name="strict"/> leaves
        /// out passing it to a method, which is mostly using it (<c>await pump(_socket)</c>), unless the method's name
        /// says it ends or takes it (<c>SafeDispose</c>, <c>Close</c>, <c>Release</c>, <c>Return</c>, <c>Exchange</c>).
        /// </summary>
        private static bool Releases(IFieldReferenceOperation reference, TrackedResources resources, bool strict)
        {
            IOperation current = reference;
            var parent = current.Parent;
            while (parent is IConversionOperation)
            {
                current = parent;
                parent = parent.Parent;
            }

            return parent switch
            {
                IInvocationOperation { TargetMethod: { Name: "Change", ContainingType.Name: "Timer" } } stop when stop.Instance == current && !strict =>
                    stop.Arguments.All(argument => IsInfinite(argument.Value)), // a stopped timer holds nothing
                IInvocationOperation invocation when invocation.Instance == current => strict ? resources.IsDisposal(invocation) : resources.IsRelease(invocation),
                IConditionalAccessOperation conditional when conditional.Operation == current =>
                    conditional.WhenNotNull is IInvocationOperation whenNotNull && (strict ? resources.IsDisposal(whenNotNull) : resources.IsRelease(whenNotNull)),
                IReturnOperation => !strict && (ReturnedFromItsCreator(reference) || InPropertyGetter(reference)),
                IIsPatternOperation pattern => !strict && pattern.Pattern.DescendantsAndSelf().Any(declared =>
                    declared is IDeclarationPatternOperation { DeclaredSymbol: not null } or IRecursivePatternOperation { DeclaredSymbol: not null }),
                IUsingOperation or IArrayInitializerOperation or ICollectionExpressionOperation => !strict,
                IArgumentOperation { Parent: IInvocationOperation { TargetMethod.Name: var name } } when strict => EndsOrTakes(name),
                IArgumentOperation or IMethodReferenceOperation or IVariableInitializerOperation => true,
                ISimpleAssignmentOperation assignment => assignment.Value == current,
                _ => false,
            };
        }

        private static bool IsInfinite(IOperation value) =>
            value.ConstantValue is { HasValue: true, Value: -1 or -1L or uint.MaxValue }
            || (value is IFieldReferenceOperation { Field: { Name: "Infinite" or "InfiniteTimeSpan", ContainingType.Name: "Timeout" } })
            || (value is IConversionOperation conversion && IsInfinite(conversion.Operand));

        /// <summary>The operation at the top of the member's code that <paramref name="operation"/> is part of.</summary>
        private static IOperation Root(IOperation operation)
        {
            while (operation.Parent is not null)
            {
                operation = operation.Parent;
            }

            return operation;
        }

        /// <summary>The method, accessor or property whose code <paramref name="root"/> is.</summary>
        private static SyntaxNode? Member(IOperation root) =>
            root.Syntax.AncestorsAndSelf().FirstOrDefault(node => node is MemberDeclarationSyntax
                or AccessorDeclarationSyntax);

        /// <summary>A property that exposes the field: its users may dispose it (<c>Socket.Dispose()</c> through <c>Socket => _socket</c>).</summary>
        private static bool InPropertyGetter(IOperation reference)
        {
            var root = Root(reference);

            return Member(root) is PropertyDeclarationSyntax
                or AccessorDeclarationSyntax { Keyword.ValueText: "get" };
        }

        /// <summary>
        /// A factory method (<c>Create...</c>) that creates the object into the field and returns it gives it to its
        /// caller, who disposes it: the field is a reuse cache. A method that hands out a shared object it keeps (a
        /// lazily opened connection) is not a factory.
        /// </summary>
        private static bool ReturnedFromItsCreator(IFieldReferenceOperation reference)
        {
            var root = Root(reference);

            return Member(root) is MethodDeclarationSyntax method
                && method.Identifier.ValueText.StartsWith("Create", StringComparison.Ordinal)
                && root.Descendants().OfType<ISimpleAssignmentOperation>().Any(assignment =>
                assignment.Target is IFieldReferenceOperation target && SymbolEqualityComparer.Default.Equals(target.Field, reference.Field)
                && assignment.Value is IObjectCreationOperation);
        }

        private static bool EndsOrTakes(string method) => EndingWords.Any(word => method.IndexOf(word, StringComparison.Ordinal) >= 0);

        /// <summary>Inside <c>if (_field == null)</c> or <c>if (_field is null)</c>: it only fills an empty field.</summary>
        private static bool GuardedByNullCheck(IOperation assignment, IFieldSymbol field)
        {
            for (var current = assignment.Parent; current is not null; current = current.Parent)
            {
                if (current is IConditionalOperation conditional && conditional.Condition.DescendantsAndSelf().Any(check =>
                        check is IBinaryOperation { OperatorKind: BinaryOperatorKind.Equals } or IIsPatternOperation
                        && check.Descendants().OfType<IFieldReferenceOperation>().Any(reference => SymbolEqualityComparer.Default.Equals(reference.Field, field))))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>
        /// True when the method, in code written before the assignment, releases the field or checks it for null (an
        /// early <c>if (_timer is not null) return;</c> guards the assignment as an enclosing check does).
        /// </summary>
        private bool ReleasedBefore(IOperation assignment, IFieldSymbol field)
        {
            var root = Root(assignment);

            return root.Descendants().OfType<IFieldReferenceOperation>().Any(reference =>
                reference.Syntax.SpanStart < assignment.Syntax.SpanStart
                && SymbolEqualityComparer.Default.Equals(reference.Field, field)
                && (Releases(reference, _resources, strict: true) || IsNullCheck(reference)));
        }

        private static bool IsNullCheck(IOperation reference)
        {
            var parent = reference.Parent;
            while (parent is IConversionOperation)
            {
                parent = parent.Parent;
            }

            return parent is IIsPatternOperation
                || (parent is IBinaryOperation { OperatorKind: BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals } binary
                    && (binary.LeftOperand.ConstantValue is { HasValue: true, Value: null } || binary.RightOperand.ConstantValue is { HasValue: true, Value: null }));
        }

        /// <summary>The innermost loop of the same function around the operation, if any.</summary>
        private static ILoopOperation? Loop(IOperation operation)
        {
            for (var current = operation.Parent; current is not null; current = current.Parent)
            {
                switch (current)
                {
                    case ILoopOperation loop:
                        return loop;
                    case IAnonymousFunctionOperation or ILocalFunctionOperation:
                        return null;
                }
            }

            return null;
        }

        private static HashSet<T> Set<T>(Dictionary<ISymbol, HashSet<T>> map, ISymbol key)
            where T : class, ISymbol
        {
            if (!map.TryGetValue(key, out var set))
            {
                IEqualityComparer<T> comparer = SymbolEqualityComparer.Default;
                map[key] = set = new HashSet<T>(comparer);
            }

            return set;
        }
    }

    /// <summary>One assignment of a created resource to a field.</summary>
    private sealed class Creation
    {
        public Creation(IOperation operation, ISymbol method, ITypeSymbol type, bool covered, ILoopOperation? loop)
        {
            Operation = operation;
            Method = method;
            Type = type;
            Covered = covered;
            Loop = loop;
        }

        public IOperation Operation { get; }

        public ISymbol Method { get; }

        public ITypeSymbol Type { get; }

        /// <summary>In a constructor or initializer, lazy (<c>??=</c>, a null check), or after a release of the field.</summary>
        public bool Covered { get; }

        public ILoopOperation? Loop { get; }
    }
}
