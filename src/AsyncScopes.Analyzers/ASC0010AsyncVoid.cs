using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0010: async work whose completion matters, written so that nobody can await it: an <c>async void</c> method or
/// local function that is not an event handler, and an async lambda given where a delegate returning <c>void</c> is
/// taken (a cancellation callback, a timer, <c>List.ForEach</c>, a process-exit event, an <c>Action</c>).
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0010AsyncVoid : DiagnosticAnalyzer
{
    /// <summary>The property of a diagnostic on a method or local function that the fix may make return <c>Task</c>:
    /// present when nothing fixes its signature (it overrides or implements nothing).</summary>
    internal const string ReturnTaskProperty = "ReturnTask";

    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.AsyncVoid,
        "Do not make async work that nobody can await",
        "{0}: {1}",
        Rules.Reliability,
        "An async void method or lambda runs to its first await and returns: the caller cannot wait for the rest, " +
        "cannot see its failure (an exception ends the process), and stops or disposes what it still uses. Return " +
        "Task and await it, or give a Func<Task> where one is taken. Not reported: event handlers (object sender, " +
        "EventArgs e), which have no one to return to, except on the process's own exit events.");

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(Rule);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var eventArgs = start.Compilation.GetTypeByMetadataName("System.EventArgs");
            var processEvents = new[]
            {
                start.Compilation.GetTypeByMetadataName("System.AppDomain"),
                start.Compilation.GetTypeByMetadataName("System.Runtime.Loader.AssemblyLoadContext"),
            };
            start.RegisterSyntaxNodeAction(node => AnalyzeFunction(node, eventArgs), SyntaxKind.MethodDeclaration, SyntaxKind.LocalFunctionStatement);
            start.RegisterOperationAction(operation => AnalyzeLambda(operation, processEvents), OperationKind.AnonymousFunction);
        });
    }

    private static void AnalyzeFunction(SyntaxNodeAnalysisContext context, INamedTypeSymbol? eventArgs)
    {
        var (modifiers, returnType, identifier) = context.Node switch
        {
            MethodDeclarationSyntax method => (method.Modifiers, method.ReturnType, method.Identifier),
            LocalFunctionStatementSyntax local => (local.Modifiers, local.ReturnType, local.Identifier),
            _ => default,
        };
        if (!modifiers.Any(SyntaxKind.AsyncKeyword) || returnType is not PredefinedTypeSyntax { Keyword.RawKind: (int)SyntaxKind.VoidKeyword }
            || context.SemanticModel.GetDeclaredSymbol(context.Node, context.CancellationToken) is not IMethodSymbol symbol
            || IsEventHandler(symbol, eventArgs))
        {
            return;
        }

        // An override or an interface's method has the signature a framework gave it (OnAppearing, ICommand.Execute):
        // it is that framework's event handler. A method used as a delegate (an event's +=, a timer's callback) has
        // the delegate's signature: the report stands, but returning Task would not compile there.
        // Dispose is the exception: its callers (using, a container) go on as if it were done.
        if (symbol.Name != "Dispose"
            && (symbol.IsOverride || symbol.ExplicitInterfaceImplementations.Length > 0 || ImplementsInterface(symbol)))
        {
            return;
        }

        var usedAsDelegate = context.Node.SyntaxTree.GetRoot(context.CancellationToken).DescendantNodes().OfType<IdentifierNameSyntax>()
            .Any(name => name.Identifier.ValueText == symbol.Name
                && name.Parent is not InvocationExpressionSyntax
                && !(name.Parent is MemberAccessExpressionSyntax access && access.Name == name && access.Parent is InvocationExpressionSyntax)
                && SymbolEqualityComparer.Default.Equals(context.SemanticModel.GetSymbolInfo(name, context.CancellationToken).Symbol, symbol));
        if (usedAsDelegate && IsSubscribedToAnEvent(symbol.Name, context.Node.SyntaxTree.GetRoot(context.CancellationToken)))
        {
            return; // a handler of an event of any delegate type
        }

        // A Dispose that overrides or implements keeps its signature: reported, with no fix.
        var signatureGiven = symbol.IsOverride || symbol.ExplicitInterfaceImplementations.Length > 0 || ImplementsInterface(symbol);
        var properties = usedAsDelegate || signatureGiven
            ? ImmutableDictionary<string, string?>.Empty
            : ImmutableDictionary<string, string?>.Empty.Add(ReturnTaskProperty, "Task");
        var what = symbol.Name == "Dispose" ? "'async void Dispose' returns before the disposal is done" : $"'{identifier.ValueText}' is async void";
        context.ReportDiagnostic(Diagnostic.Create(
            Rule, identifier.GetLocation(), properties, what, "nobody can await it or see its failure; return Task and await it"));
    }

    private static void AnalyzeLambda(OperationAnalysisContext context, INamedTypeSymbol?[] processEvents)
    {
        var lambda = (IAnonymousFunctionOperation)context.Operation;
        if (!lambda.Symbol.IsAsync || !lambda.Symbol.ReturnsVoid)
        {
            return;
        }

        var parent = lambda.Parent;
        while (parent is IDelegateCreationOperation or IConversionOperation or IParenthesizedOperation)
        {
            parent = parent.Parent;
        }

        string? target = parent switch
        {
            IArgumentOperation { Parameter: { } parameter } argument when argument.Parent is IInvocationOperation or IObjectCreationOperation =>
                $"'{Name(argument.Parent)}' takes it as a delegate of type '{parameter.Type.ToDisplayString(SymbolDisplayFormat.MinimallyQualifiedFormat)}'",
            IEventAssignmentOperation { EventReference: IEventReferenceOperation { Event: { } @event } } when processEvents.Any(type => KnownTypes.Is(@event.ContainingType, type)) =>
                $"the process does not wait for its '{@event.Name}' handlers",
            IEventAssignmentOperation => null, // an event handler: nobody to return to
            ISimpleAssignmentOperation or IVariableInitializerOperation or IFieldInitializerOperation or IPropertyInitializerOperation or IReturnOperation =>
                "it becomes a delegate that returns void",
            _ => null,
        };
        if (target is null)
        {
            return;
        }

        context.ReportDiagnostic(Diagnostic.Create(
            Rule,
            ((AnonymousFunctionExpressionSyntax)lambda.Syntax).AsyncKeyword.GetLocation(),
            "An async lambda runs as async void",
            target + ": nobody awaits it or sees its failure; pass a Func<Task> where one is taken, or start the work where it is awaited"));
    }

    private static string Name(IOperation? call) => call switch
    {
        IInvocationOperation invocation => invocation.TargetMethod.ContainingType.Name + "." + invocation.TargetMethod.Name,
        IObjectCreationOperation creation => "new " + creation.Type?.Name,
        _ => "the call",
    };

    private static bool IsSubscribedToAnEvent(string name, SyntaxNode root) =>
        root.DescendantNodes().OfType<AssignmentExpressionSyntax>().Any(assignment =>
            assignment.IsKind(SyntaxKind.AddAssignmentExpression)
            && assignment.Right is IdentifierNameSyntax { Identifier.ValueText: var handler } && handler == name);

    // (object sender, EventArgs e) or a derived EventArgs: the shape events call.
    private static bool IsEventHandler(IMethodSymbol method, INamedTypeSymbol? eventArgs) =>
        method.Parameters.Length == 2
        && method.Parameters[0].Type.SpecialType == SpecialType.System_Object
        && eventArgs is not null
        && (KnownTypes.Is(method.Parameters[1].Type, eventArgs) || KnownTypes.InheritsFrom(method.Parameters[1].Type, eventArgs));

    private static bool ImplementsInterface(IMethodSymbol method) =>
        method.ContainingType?.AllInterfaces.SelectMany(@interface => @interface.GetMembers(method.Name)).Any(member =>
            SymbolEqualityComparer.Default.Equals(method.ContainingType.FindImplementationForInterfaceMember(member), method)) == true;
}
