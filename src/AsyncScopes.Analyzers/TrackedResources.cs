using System.Collections.Concurrent;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace AsyncScopes.Analyzers;

/// <summary>
/// The resources ASC0013 and ASC0014 track (objects whose leak holds a socket, a timer, a registration, native or
/// pooled memory, a file or a connection until the garbage collector finds them), where they come from, and what
/// disposes them.
/// </summary>
internal sealed class TrackedResources
{
    private readonly INamedTypeSymbol?[] _closeable;
    private readonly INamedTypeSymbol?[] _tracked;
    private readonly INamedTypeSymbol?[] _notTracked;
    private readonly INamedTypeSymbol? _cancellationTokenSource;
    private readonly INamedTypeSymbol? _textWriter;
    private readonly ConcurrentDictionary<ITypeSymbol, bool> _trackedTypes = new(SymbolEqualityComparer.Default);
    private readonly INamedTypeSymbol? _webSocket;
    private readonly INamedTypeSymbol? _httpListener;
    private readonly INamedTypeSymbol? _tcpClient;

    public TrackedResources(Compilation compilation)
    {
        Known = KnownTypes.From(compilation);
        INamedTypeSymbol? Type(string name) => compilation.GetTypeByMetadataName(name);
        _cancellationTokenSource = Type("System.Threading.CancellationTokenSource");
        _textWriter = Type("System.IO.TextWriter");
        _webSocket = Type("System.Net.WebSockets.WebSocket");
        _httpListener = Type("System.Net.HttpListener");
        _tcpClient = Type("System.Net.Sockets.TcpClient");
        _closeable = new[]
        {
            Known.Stream, Known.DbConnection, Known.DbDataReader, Type("System.Net.Sockets.Socket"), Type("System.Net.Sockets.TcpClient"),
            Type("System.Net.Sockets.UdpClient"), Type("System.Net.HttpListener"), Type("System.Timers.Timer"),
        };
        _tracked = new[]
        {
            Known.Stream, Known.DbConnection, Known.DbDataReader, _webSocket,
            Type("System.Net.Sockets.Socket"), Type("System.Net.Sockets.TcpClient"), Type("System.Net.Sockets.UdpClient"),
            Type("System.Net.HttpListener"), Type("System.Threading.PeriodicTimer"), Known.Timer, Known.ITimer, Type("System.Timers.Timer"),
        };
        _notTracked = new[]
        {
            // Disposing these releases nothing: their Dispose only marks them closed.
            Type("System.IO.MemoryStream"), Type("System.IO.UnmanagedMemoryStream"),
        };
    }

    /// <summary>The types every rule knows.</summary>
    public KnownTypes Known { get; }

    /// <summary>The type of the resource <paramref name="operation"/> creates, or null when it creates none the rule tracks.</summary>
    public ITypeSymbol? Created(IOperation operation)
    {
        operation = OwnershipFlow.Strip(operation);
        if (operation is IAwaitOperation awaited)
        {
            operation = OwnershipFlow.Strip(awaited.Operation);
            if (operation is IInvocationOperation { TargetMethod.Name: "ConfigureAwait", Instance: { } configured })
            {
                operation = OwnershipFlow.Strip(configured);
            }

            return operation is IInvocationOperation asyncFactory && IsAsyncFactory(asyncFactory.TargetMethod)
                && asyncFactory.Type is INamedTypeSymbol { TypeArguments.Length: 1 } task && Tracked(task.TypeArguments[0], operation)
                ? task.TypeArguments[0]
                : null;
        }

        switch (operation)
        {
            case IObjectCreationOperation { Type: { } created } creation when Tracked(created, creation):
                return created;
            case IInvocationOperation { Type: { } returned } invocation when IsFactory(invocation.TargetMethod) && Tracked(returned, invocation):
                return returned;
            default:
                return null;
        }
    }

    /// <summary>
    /// Dispose, DisposeAsync, or Close (CloseAsync, Close(timeout)) on the types that document it as disposal; or a call
    /// that hands what the object holds to a new owner (a <c>TcpClient</c>'s stream owns its socket).
    /// <paramref name="created"/>, when known, is the type the object was created as: a local declared as an interface
    /// (<c>IDbConnection</c>) still holds a connection whose <c>Close()</c> disposes it.
    /// </summary>
    public bool IsRelease(IInvocationOperation invocation, ITypeSymbol? created = null)
    {
        var method = invocation.TargetMethod;
        bool Is(Func<ITypeSymbol, bool> kind) => (invocation.Instance?.Type is { } type && kind(type)) || (created is not null && kind(created));
        return method.Name switch
        {
            "Dispose" or "DisposeAsync" => method.Parameters.Length == 0,
            "GetStream" => method.Parameters.Length == 0 && Is(type => IsOrDerives(type, _tcpClient)),
            "Close" or "CloseAsync" => Is(type => _closeable.Any(closeable => IsOrDerives(type, closeable))),
            "Abort" => method.Parameters.Length == 0 && Is(type => IsOrDerives(type, _webSocket) || IsOrDerives(type, _httpListener)),
            _ => false,
        };
    }

    /// <summary>
    /// True when passing the object as this argument lends it rather than hands it on: a BCL method taking a
    /// <c>Stream</c> that reads or writes it and returns (<c>source.CopyToAsync(file)</c>, <c>JsonSerializer.SerializeAsync(file, value)</c>), or a
    /// wrapper told to leave it open (<c>leaveOpen: true</c>).
    /// </summary>
    public static bool Borrows(IArgumentOperation argument) => argument.Parent switch
    {
        IInvocationOperation invocation => Borrowers.Contains(invocation.TargetMethod.Name) && DeclaredByTheBcl(invocation.TargetMethod)
            && argument.Parameter?.Type is { Name: "Stream", ContainingNamespace: { Name: "IO", ContainingNamespace.Name: "System" } },
        IObjectCreationOperation creation => creation.Arguments.Any(other =>
            other.Parameter?.Name is "leaveOpen" or "leaveInnerStreamOpen" && other.Value.ConstantValue is { HasValue: true, Value: true }),
        _ => false,
    };

    private static readonly HashSet<string> Borrowers = new(StringComparer.Ordinal)
    {
        "CopyTo", "CopyToAsync", "Serialize", "SerializeAsync", "Deserialize", "DeserializeAsync", "Write", "WriteLine",
        "WriteAsync", "WriteLineAsync", "Read", "ReadAsync", "Load", "LoadAsync", "Save", "SaveAsync",
    };

    /// <summary>Dispose, DisposeAsync, or Close where the type documents it as disposal: a release that ends the object.</summary>
    public bool IsDisposal(IInvocationOperation invocation) => invocation.TargetMethod.Name != "GetStream" && IsRelease(invocation);

    /// <summary>True when the type implements <c>IAsyncDisposable</c>.</summary>
    public bool IsAsyncDisposable(ITypeSymbol type) => KnownTypes.Implements(type, Known.IAsyncDisposable);

    /// <summary>
    /// True when an object of this type, whoever created it, holds what ASC0013 tracks: for a value taken out of a
    /// registry. A <c>CancellationTokenSource</c> is left out: whether it is linked or timed is decided where it was made.
    /// </summary>
    public bool IsTrackedType(ITypeSymbol type) =>
        !type.IsValueType && !(_cancellationTokenSource is not null && IsOrDerives(type, _cancellationTokenSource)) && _trackedTypes.GetOrAdd(type, TrackedType);

    private bool Tracked(ITypeSymbol type, IOperation creation)
    {
        if (type.IsValueType)
        {
            return false;
        }

        if (_cancellationTokenSource is not null && IsOrDerives(type, _cancellationTokenSource))
        {
            // Only a linked or timed source holds anything (a registration on another token, or a timer); a
            // derived source has its own way to end.
            return KnownTypes.Is(type, _cancellationTokenSource)
                && (creation is IInvocationOperation { TargetMethod.Name: "CreateLinkedTokenSource" } || creation is IObjectCreationOperation { Arguments.Length: > 0 });
        }

        // An SslStream or NegotiateStream made over a stream of this object or of the caller (a field, a parameter)
        // holds nothing of its own before it authenticates, and its inner stream has that owner: the owner's to close.
        if (type.Name is "SslStream" or "NegotiateStream" && type.ContainingNamespace?.ToDisplayString() == "System.Net.Security"
            && creation is IObjectCreationOperation { Arguments.Length: > 0 } wrapper
            && OwnershipFlow.Strip(wrapper.Arguments[0].Value) is IFieldReferenceOperation or IParameterReferenceOperation or IPropertyReferenceOperation)
        {
            return false;
        }

        return _trackedTypes.GetOrAdd(type, TrackedType);
    }

    /// <summary>Decided once per type: every method of a compilation asks about the objects it creates.</summary>
    private bool TrackedType(ITypeSymbol type)
    {
        if (!KnownTypes.Implements(type, Known.IDisposable) && !KnownTypes.Implements(type, Known.IAsyncDisposable))
        {
            return false;
        }

        if (_notTracked.Any(excluded => KnownTypes.Is(type, excluded)) || type.ContainingNamespace?.ToDisplayString() == "AsyncScopes")
        {
            return false; // nothing to release; or the library's own, which ASC0008 covers
        }

        if (IsOrDerives(type, Known.DbTransaction))
        {
            return false; // ends with its connection: disposing the connection rolls back what was not committed
        }

        if (type is INamedTypeSymbol named && named.AllInterfaces.Add(named).Any(implemented => implemented.OriginalDefinition.ToDisplayString() == "System.Buffers.IMemoryOwner<T>"))
        {
            return true;
        }

        if (_tracked.Any(tracked => tracked is not null && IsOrDerives(type, tracked)))
        {
            return true;
        }

        // Any other object whose disposal is asynchronous work, but not a writer (a TextWriter, an XmlWriter, a
        // Utf8JsonWriter): a writer over someone else's stream or buffer is left undisposed on purpose once flushed
        // (disposing it would close the stream, and releases nothing else).
        return !(_textWriter is not null && IsOrDerives(type, _textWriter)) && !type.Name.EndsWith("Writer", StringComparison.Ordinal)
            && AsyncDisposal.DoesAsyncWork(type, Known);
    }

    /// <summary>A method of the BCL (or an override of one) that returns a new object the caller owns.</summary>
    private static bool IsFactory(IMethodSymbol method) => method.Name switch
    {
        "CreateLinkedTokenSource" or "Rent" or "CreateConnection" or "OpenConnection" or "ExecuteReader"
            or "CreateFromStream" or "CreateClientWebSocket" or "CreateTimer" or "Accept" or "AcceptTcpClient" or "AcceptSocket"
            or "OpenRead" or "OpenWrite" or "Open" or "Create" => DeclaredByTheBcl(method),
        _ => false,
    };

    /// <summary>The same, for a method whose task gives the object.</summary>
    private static bool IsAsyncFactory(IMethodSymbol method) => method.Name switch
    {
        "ExecuteReaderAsync" or "OpenConnectionAsync" or "AcceptAsync" or "AcceptTcpClientAsync"
            or "AcceptSocketAsync" => DeclaredByTheBcl(method),
        _ => false,
    };

    private static bool DeclaredByTheBcl(IMethodSymbol method)
    {
        var root = method;
        while (root.OverriddenMethod is { } overridden)
        {
            root = overridden;
        }

        return root.ContainingType?.ContainingNamespace?.ToDisplayString() is { } space
            && (space == "System" || space.StartsWith("System.", StringComparison.Ordinal));
    }

    private static bool IsOrDerives(ITypeSymbol type, ITypeSymbol? baseType) =>
        baseType is not null && (KnownTypes.Is(type, baseType) || KnownTypes.InheritsFrom(type, baseType));
}
