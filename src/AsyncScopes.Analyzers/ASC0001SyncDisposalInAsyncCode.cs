using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;

namespace AsyncScopes.Analyzers;

/// <summary>
/// ASC0001: a <c>using</c> or a <c>Dispose()</c> call, in code that can await, disposes synchronously an object whose
/// <c>DisposeAsync</c> does asynchronous work: the thread blocks on that work.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ASC0001SyncDisposalInAsyncCode : DiagnosticAnalyzer
{
    /// <summary>The rule's descriptor.</summary>
    public static readonly DiagnosticDescriptor Rule = Rules.Create(
        Rules.SyncDisposalInAsyncCode,
        "Dispose asynchronously in async code",
        "'{0}' is disposed synchronously {1}, but its DisposeAsync does asynchronous work: {2}",
        Rules.Reliability,
        "Disposing an async-disposable object with 'using' or 'Dispose()' blocks the thread on the I/O its DisposeAsync " +
        "would have awaited (a flush, a rollback, a close handshake). In a method that can await, use 'await using' or " +
        "'await DisposeAsync()'. Types whose DisposeAsync only calls Dispose (a MemoryStream) are not reported.");

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

            start.RegisterSyntaxNodeAction(node => AnalyzeUsingStatement(node, known), SyntaxKind.UsingStatement);
            start.RegisterSyntaxNodeAction(node => AnalyzeUsingDeclaration(node, known), SyntaxKind.LocalDeclarationStatement);
            start.RegisterSyntaxNodeAction(node => AnalyzeDisposeCall(node, known), SyntaxKind.InvocationExpression);
        });
    }

    private static void AnalyzeUsingStatement(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var statement = (UsingStatementSyntax)context.Node;
        if (statement.AwaitKeyword.IsKind(SyntaxKind.AwaitKeyword) || !Functions.CanAwaitAt(statement))
        {
            return;
        }

        if (statement.Declaration is { } declaration)
        {
            ReportDeclarators(context, declaration, known);
        }
        else if (statement.Expression is { } expression)
        {
            // `using (stream = File.OpenRead(path))` and `using (stream)`: a local is judged as its declaration would be.
            var (target, value) = expression is AssignmentExpressionSyntax { Left: var left, Right: var right } ? (left, right) : (expression, null);
            var local = context.SemanticModel.GetSymbolInfo(target, context.CancellationToken).Symbol as ILocalSymbol;
            var type = local is null
                ? context.SemanticModel.GetTypeInfo(expression, context.CancellationToken).Type
                : HeldType(local.Type, value, context.SemanticModel, context.CancellationToken);
            if (AsyncDisposal.DoesAsyncWork(type, known)
                && (local is null || !NothingLeftToDispose(local, statement, context.SemanticModel, known, context.CancellationToken)))
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, expression.GetLocation(), expression.ToString(), InAsyncMethod, "use 'await using'"));
            }
        }
    }

    private static void AnalyzeUsingDeclaration(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var statement = (LocalDeclarationStatementSyntax)context.Node;
        if (!statement.UsingKeyword.IsKind(SyntaxKind.UsingKeyword) || statement.AwaitKeyword.IsKind(SyntaxKind.AwaitKeyword)
            || !Functions.CanAwaitAt(statement))
        {
            return;
        }

        ReportDeclarators(context, statement.Declaration, known);
    }

    private static void ReportDeclarators(SyntaxNodeAnalysisContext context, VariableDeclarationSyntax declaration, KnownTypes known)
    {
        foreach (var variable in declaration.Variables)
        {
            var local = context.SemanticModel.GetDeclaredSymbol(variable, context.CancellationToken) as ILocalSymbol;
            if (AsyncDisposal.DoesAsyncWork(HeldType(local?.Type, variable.Initializer?.Value, context.SemanticModel, context.CancellationToken), known)
                && !NothingLeftToDispose(local!, variable, context.SemanticModel, known, context.CancellationToken))
            {
                context.ReportDiagnostic(Diagnostic.Create(Rule, variable.GetLocation(), variable.Identifier.ValueText, InAsyncMethod, "use 'await using'"));
            }
        }
    }

    /// <summary>The property, present on a diagnostic the fix leaves alone (a <c>DisposeAsync</c> that is not async cannot await).</summary>
    internal const string NoFixProperty = "NoFix";

    private const string InAsyncMethod = "in an async method";

    private static readonly ImmutableDictionary<string, string?> NoFix = ImmutableDictionary<string, string?>.Empty.Add(NoFixProperty, "true");

    /// <summary>
    /// In a <c>DisposeAsync</c> or <c>DisposeAsyncCore</c> that is not async (it returns a completed task, or another
    /// task): disposing an async-disposable field there synchronously blocks the caller who awaits the disposal.
    /// </summary>
    private static bool InSynchronousDisposeAsync(SyntaxNode node) =>
        Functions.Enclosing(node) is MethodDeclarationSyntax { Identifier.ValueText: "DisposeAsync" or "DisposeAsyncCore" } method
        && !method.Modifiers.Any(SyntaxKind.AsyncKeyword)
        && !node.Ancestors().TakeWhile(ancestor => ancestor != method).Any(ancestor => ancestor is LockStatementSyntax);

    private static void AnalyzeDisposeCall(SyntaxNodeAnalysisContext context, KnownTypes known)
    {
        var invocation = (InvocationExpressionSyntax)context.Node;
        if (invocation.ArgumentList.Arguments.Count != 0)
        {
            return;
        }

        ExpressionSyntax? receiver = invocation.Expression switch
        {
            MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Dispose" } access => access.Expression,
            MemberBindingExpressionSyntax { Name.Identifier.ValueText: "Dispose" } when invocation.Parent is ConditionalAccessExpressionSyntax conditional
                && conditional.WhenNotNull == invocation => conditional.Expression,
            _ => null,
        };

        // The object's own Dispose() called from inside it is its disposal pattern, not a use of the object.
        // The synchronous branch of code written to run either way (if (async) await x.DisposeAsync(); else x.Dispose();)
        // runs only when the caller asked for synchronous I/O.
        var canAwait = Functions.CanAwaitAt(invocation);
        if (receiver is null or ThisExpressionSyntax or BaseExpressionSyntax || (!canAwait && !InSynchronousDisposeAsync(invocation)) || Functions.HasAsyncTwin(invocation))
        {
            return;
        }

        if (context.SemanticModel.GetSymbolInfo(invocation, context.CancellationToken).Symbol is not IMethodSymbol { Parameters.Length: 0, ReturnsVoid: true })
        {
            return;
        }

        var type = context.SemanticModel.GetTypeInfo(receiver, context.CancellationToken).Type;
        if (context.SemanticModel.GetSymbolInfo(receiver, context.CancellationToken).Symbol is ILocalSymbol declared
            && declared.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(context.CancellationToken) is VariableDeclaratorSyntax { Initializer.Value: var initial })
        {
            type = HeldType(type, initial, context.SemanticModel, context.CancellationToken);
        }

        if (AsyncDisposal.DoesAsyncWork(type, known)
            && !(context.SemanticModel.GetSymbolInfo(receiver, context.CancellationToken).Symbol is ILocalSymbol local
                && NothingLeftToDispose(local, invocation, context.SemanticModel, known, context.CancellationToken)))
        {
            var location = invocation.Parent is ConditionalAccessExpressionSyntax conditional ? conditional.GetLocation() : invocation.GetLocation();
            context.ReportDiagnostic(canAwait
                ? Diagnostic.Create(Rule, location, receiver.ToString(), InAsyncMethod, $"use 'await {receiver}.DisposeAsync()'")
                : Diagnostic.Create(Rule, location, NoFix, receiver.ToString(), "in a DisposeAsync that is not async", $"make it async and use 'await {receiver}.DisposeAsync()'"));
        }
    }

    /// <summary>The type of what a variable holds: its declared type, or the type of its initializer where that says more
    /// (<c>Stream s = File.OpenWrite(path)</c> holds a <c>FileStream</c>).</summary>
    private static ITypeSymbol? HeldType(ITypeSymbol? declared, ExpressionSyntax? initializer, SemanticModel model, CancellationToken cancellationToken) =>
        initializer is not null && model.GetTypeInfo(initializer, cancellationToken).Type is { TypeKind: not TypeKind.Error } held && !KnownTypes.Is(held, declared)
            && declared is not null && (KnownTypes.InheritsFrom(held, declared) || KnownTypes.Implements(held, declared))
            ? held
            : declared;

    /// <summary>
    /// True when the local's asynchronous disposal would have nothing to wait for, as the function uses it: a stream
    /// wrapped around one whose disposal is synchronous (a compression stream over a <c>MemoryStream</c>, an
    /// <c>SslStream</c> over a plain stream); a stream the function only reads from; a reader the function drains to
    /// the end (its disposal reads what is left).
    /// </summary>
    private static bool NothingLeftToDispose(ILocalSymbol local, SyntaxNode near, SemanticModel model, KnownTypes known, CancellationToken cancellationToken)
    {
        if (Functions.Enclosing(near) is not { } function || Functions.Body(function) is not { } body)
        {
            return false;
        }

        var references = Functions.OwnNodes(body).OfType<IdentifierNameSyntax>()
            .Where(identifier => identifier.Identifier.ValueText == local.Name
                && SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(identifier, cancellationToken).Symbol, local))
            .ToList();
        var isStream = known.Stream is not null && KnownTypes.InheritsFrom(local.Type, known.Stream) || KnownTypes.Is(local.Type, known.Stream);
        if (isStream && WrapsSynchronousDisposal(local, model, known, cancellationToken))
        {
            return true;
        }

        if (isStream && references.All(reference => reference.Parent is AssignmentExpressionSyntax { Parent: UsingStatementSyntax } assigned && assigned.Left == reference
                || reference.Parent is UsingStatementSyntax
                || reference.Parent is MemberAccessExpressionSyntax member && member.Expression == reference
                && member.Name.Identifier.ValueText is "Read" or "ReadAsync" or "ReadByte" or "ReadExactly" or "ReadExactlyAsync" or "ReadAtLeast"
                    or "ReadAtLeastAsync" or "CopyTo" or "CopyToAsync" or "Length" or "Position" or "CanRead" or "CanSeek" or "Seek" or "Dispose"
                || reference.Parent is ConditionalAccessExpressionSyntax { WhenNotNull: InvocationExpressionSyntax { Expression: MemberBindingExpressionSyntax { Name.Identifier.ValueText: "Dispose" } } }))
        {
            return true; // nothing written: nothing to flush
        }

        var isConnection = known.DbConnection is not null && (KnownTypes.Is(local.Type, known.DbConnection) || KnownTypes.InheritsFrom(local.Type, known.DbConnection));
        if (isConnection && Functions.RunsEitherWay(function)
            && !references.Any(reference => Regions.AccessedMember(reference) is "BeginTransaction" or "BeginTransactionAsync" or "EnlistTransaction"))
        {
            return true; // a connection that began no transaction here only goes back to its pool: the same work on both paths
        }

        var isReader = known.DbDataReader is not null && (KnownTypes.Is(local.Type, known.DbDataReader) || KnownTypes.InheritsFrom(local.Type, known.DbDataReader));
        return isReader && DrainedToTheEnd(local, references);
    }

    private static bool WrapsSynchronousDisposal(ILocalSymbol local, SemanticModel model, KnownTypes known, CancellationToken cancellationToken)
    {
        var declarator = local.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) as VariableDeclaratorSyntax;
        if (declarator?.Initializer?.Value is not BaseObjectCreationExpressionSyntax { ArgumentList.Arguments: { Count: > 0 } arguments })
        {
            return false;
        }

        var inner = arguments[0].Expression;
        var innerType = model.GetTypeInfo(inner, cancellationToken).Type;
        if (model.GetSymbolInfo(inner, cancellationToken).Symbol is ILocalSymbol innerLocal
            && innerLocal.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) is VariableDeclaratorSyntax { Initializer.Value: BaseObjectCreationExpressionSyntax innerCreation })
        {
            innerType = model.GetTypeInfo(innerCreation, cancellationToken).Type;
        }

        return innerType is not null && known.Stream is not null
            && (KnownTypes.Is(innerType, known.Stream) || KnownTypes.InheritsFrom(innerType, known.Stream))
            && !AsyncDisposal.DoesAsyncWork(innerType, known);
    }

    /// <summary>A <c>while</c> or <c>do</c> whose condition awaits the reader's <c>ReadAsync</c> or <c>NextResultAsync</c>,
    /// left only when it returns false, and no read after it.</summary>
    private static bool DrainedToTheEnd(ILocalSymbol local, List<IdentifierNameSyntax> references)
    {
        foreach (var reference in references)
        {
            if (reference.Parent is not MemberAccessExpressionSyntax { Name.Identifier.ValueText: "ReadAsync" or "NextResultAsync" } member
                || reference.FirstAncestorOrSelf<ExpressionSyntax>(expression => expression.Parent is WhileStatementSyntax or DoStatementSyntax) is not { } condition)
            {
                continue;
            }

            var loop = (StatementSyntax)condition.Parent!;
            // A yield hands control to a consumer that may stop enumerating there: the rest is left unread.
            var leaves = Functions.OwnNodes(loop).Any(node => node is ReturnStatementSyntax or GotoStatementSyntax or ThrowStatementSyntax or YieldStatementSyntax
                || (node is BreakStatementSyntax && node.Ancestors().FirstOrDefault(ancestor =>
                    ancestor is WhileStatementSyntax or DoStatementSyntax or ForStatementSyntax or CommonForEachStatementSyntax or SwitchStatementSyntax) == loop));
            var readsAfter = references.Any(other => other.SpanStart > loop.Span.End
                && other.Parent is MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Read" or "ReadAsync" or "NextResult" or "NextResultAsync" });
            if (!leaves && !readsAfter && member.Parent is InvocationExpressionSyntax)
            {
                return true;
            }
        }

        return false;
    }
}
