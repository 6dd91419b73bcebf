using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace AsyncScopes.Analyzers;

/// <summary>Decides whether disposing a type asynchronously does work that disposing it synchronously would block on.</summary>
internal static class AsyncDisposal
{
    /// <summary>
    /// True when <paramref name="type"/> is async-disposable and its <c>DisposeAsync</c> may really be asynchronous:
    /// false for types whose <c>DisposeAsync</c> is inherited unchanged from a BCL base that only calls
    /// <c>Dispose</c> (<c>MemoryStream</c>), for types known to complete it synchronously, and for source types
    /// whose <c>DisposeAsync</c> is not async and returns a completed task on every path.
    /// </summary>
    public static bool DoesAsyncWork(ITypeSymbol? type, KnownTypes known)
    {
        if (type is null || known.IAsyncDisposable is null || !KnownTypes.Implements(type, known.IAsyncDisposable))
        {
            return false;
        }

        if (KnownTypes.Is(type, known.SemaphoreReleaser) || KnownTypes.Is(type, known.CancellationTokenRegistration)
            || KnownTypes.Is(type, known.Timer) || KnownTypes.Is(type, known.ITimer))
        {
            // Releasing a permit and unregistering a callback complete synchronously; a timer's Dispose does not
            // block at all (it does not wait for a running callback, which is what DisposeAsync adds).
            return false;
        }

        if (type.ContainingNamespace?.ToDisplayString() == "System.Net.Security" && type.BaseType?.Name == "AuthenticatedStream")
        {
            // An SslStream's or NegotiateStream's DisposeAsync is its synchronous cleanup and its inner stream's
            // DisposeAsync (it sends no close_notify: that is ShutdownAsync), and the inner stream is a socket's or a
            // pipe's, whose disposal is synchronous.
            return false;
        }

        if (known.DbCommand is not null && (KnownTypes.Is(type, known.DbCommand) || KnownTypes.InheritsFrom(type, known.DbCommand)))
        {
            // No provider's command does asynchronous work when disposed: Npgsql's, SqlClient's and Sqlite's inherit
            // DbCommand.DisposeAsync, which only calls Dispose, and MySqlConnector's override completes synchronously.
            // The connection, the reader (which drains rows) and the transaction (which rolls back) do.
            return false;
        }

        if (KnownTypes.Is(type, known.Stream))
        {
            // A stream known only as Stream: on real code it holds a socket's stream (NetworkStream, SslStream over one,
            // a pipe) far more often than one that flushes on disposal, and what it holds is decided where it was made.
            // The rules look at that place when they can (a local's initializer, a field's).
            return false;
        }

        if (type.TypeKind is TypeKind.Interface or TypeKind.TypeParameter || KnownTypes.Is(type, known.IAsyncDisposable))
        {
            // The object behind it is unknown: assume it does asynchronous work.
            return true;
        }

        var interfaceMethod = known.IAsyncDisposable.GetMembers("DisposeAsync").OfType<IMethodSymbol>().FirstOrDefault();
        if (interfaceMethod is null || type.FindImplementationForInterfaceMember(interfaceMethod) is not IMethodSymbol implementation)
        {
            return true;
        }

        var mostDerived = MostDerivedOverride(type, implementation);
        foreach (var baseType in known.BaseBehaviourTypes)
        {
            if (baseType is not null && KnownTypes.Is(mostDerived.ContainingType, baseType))
            {
                // Inherited from Stream, TextWriter or a Db* base: only the base type itself, or an abstract type, can
                // stand for a derived object that does override it.
                return KnownTypes.Is(type, baseType) || type.IsAbstract;
            }
        }

        return !CompletesSynchronously(mostDerived);
    }

    private static IMethodSymbol MostDerivedOverride(ITypeSymbol type, IMethodSymbol implementation)
    {
        for (var current = type; current is not null; current = current.BaseType)
        {
            foreach (var member in current.GetMembers("DisposeAsync"))
            {
                if (member is IMethodSymbol { Parameters.Length: 0 } method && Overrides(method, implementation))
                {
                    return method;
                }
            }
        }

        return implementation;
    }

    private static bool Overrides(IMethodSymbol method, IMethodSymbol implementation)
    {
        for (IMethodSymbol? current = method; current is not null; current = current.OverriddenMethod)
        {
            if (SymbolEqualityComparer.Default.Equals(current.OriginalDefinition, implementation.OriginalDefinition))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A source method, not async, every return of which is a completed task (<c>default</c>, <c>ValueTask.CompletedTask</c>, <c>new ValueTask()</c>).</summary>
    private static bool CompletesSynchronously(IMethodSymbol method)
    {
        if (method.IsAsync || method.IsAbstract || method.DeclaringSyntaxReferences.Length == 0)
        {
            return false;
        }

        foreach (var reference in method.DeclaringSyntaxReferences)
        {
            if (reference.GetSyntax() is not MethodDeclarationSyntax declaration)
            {
                return false;
            }

            if (declaration.ExpressionBody is { } arrow)
            {
                if (!IsCompletedTask(arrow.Expression))
                {
                    return false;
                }

                continue;
            }

            if (declaration.Body is null)
            {
                return false;
            }

            if (!ReturnsOnlyCompletedTasks(declaration.Body))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True when every <c>return</c> of the block (there is at least one) returns a completed task.</summary>
    public static bool ReturnsOnlyCompletedTasks(SyntaxNode body)
    {
        if (body is ExpressionSyntax expression)
        {
            return IsCompletedTask(expression);
        }

        var returns = Functions.OwnNodes(body).OfType<ReturnStatementSyntax>().ToList();
        return returns.Count > 0 && returns.All(statement => statement.Expression is not null && IsCompletedTask(statement.Expression));
    }

    private static bool IsCompletedTask(ExpressionSyntax expression)
    {
        switch (expression)
        {
            case LiteralExpressionSyntax literal when literal.IsKind(SyntaxKind.DefaultLiteralExpression):
            case DefaultExpressionSyntax:
                return true;
            case MemberAccessExpressionSyntax { Name.Identifier.ValueText: "CompletedTask" }:
                return true;
            case ObjectCreationExpressionSyntax { ArgumentList.Arguments.Count: 0 } creation:
                return creation.Type.ToString().EndsWith("ValueTask", StringComparison.Ordinal);
            case ImplicitObjectCreationExpressionSyntax { ArgumentList.Arguments.Count: 0 }:
                return true;
            default:
                return false;
        }
    }
}
