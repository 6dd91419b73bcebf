using Microsoft.CodeAnalysis;

namespace AsyncScopes.Analyzers;

/// <summary>The types the rules look for, resolved once per compilation; a type the compilation lacks is null.</summary>
internal sealed class KnownTypes
{
    private KnownTypes(Compilation compilation)
    {
        IDisposable = compilation.GetSpecialType(SpecialType.System_IDisposable);
        IAsyncDisposable = compilation.GetTypeByMetadataName("System.IAsyncDisposable");
        Task = compilation.GetTypeByMetadataName("System.Threading.Tasks.Task");
        TaskOfT = compilation.GetTypeByMetadataName("System.Threading.Tasks.Task`1");
        ValueTask = compilation.GetTypeByMetadataName("System.Threading.Tasks.ValueTask");
        ValueTaskOfT = compilation.GetTypeByMetadataName("System.Threading.Tasks.ValueTask`1");
        SemaphoreSlim = compilation.GetTypeByMetadataName("System.Threading.SemaphoreSlim");
        WaitHandle = compilation.GetTypeByMetadataName("System.Threading.WaitHandle");
        CancellationTokenRegistration = compilation.GetTypeByMetadataName("System.Threading.CancellationTokenRegistration");
        Timer = compilation.GetTypeByMetadataName("System.Threading.Timer");
        ITimer = compilation.GetTypeByMetadataName("System.Threading.ITimer");
        Stream = compilation.GetTypeByMetadataName("System.IO.Stream");
        TextWriter = compilation.GetTypeByMetadataName("System.IO.TextWriter");
        DbConnection = compilation.GetTypeByMetadataName("System.Data.Common.DbConnection");
        DbCommand = compilation.GetTypeByMetadataName("System.Data.Common.DbCommand");
        DbTransaction = compilation.GetTypeByMetadataName("System.Data.Common.DbTransaction");
        DbDataReader = compilation.GetTypeByMetadataName("System.Data.Common.DbDataReader");
        DbBatch = compilation.GetTypeByMetadataName("System.Data.Common.DbBatch");
        TaskScope = compilation.GetTypeByMetadataName("AsyncScopes.TaskScope");
        AsyncExitStack = compilation.GetTypeByMetadataName("AsyncScopes.AsyncExitStack");
        WorkQueue = compilation.GetTypeByMetadataName("AsyncScopes.WorkQueue`1");
        PoolLease = compilation.GetTypeByMetadataName("AsyncScopes.PoolLease`1");
        AsyncPool = compilation.GetTypeByMetadataName("AsyncScopes.AsyncPool`1");
        AsyncContext = compilation.GetTypeByMetadataName("AsyncScopes.AsyncContext");
        SemaphoreReleaser = compilation.GetTypeByMetadataName("AsyncScopes.SemaphoreReleaser");
        SemaphoreSlimExtensions = compilation.GetTypeByMetadataName("AsyncScopes.SemaphoreSlimExtensions");
        BaseBehaviourTypes = new[] { Stream, TextWriter, DbConnection, DbCommand, DbTransaction, DbDataReader, DbBatch };
    }

    public INamedTypeSymbol IDisposable { get; }

    public INamedTypeSymbol? IAsyncDisposable { get; }

    public INamedTypeSymbol? Task { get; }

    public INamedTypeSymbol? TaskOfT { get; }

    public INamedTypeSymbol? ValueTask { get; }

    public INamedTypeSymbol? ValueTaskOfT { get; }

    public INamedTypeSymbol? SemaphoreSlim { get; }

    public INamedTypeSymbol? WaitHandle { get; }

    public INamedTypeSymbol? CancellationTokenRegistration { get; }

    public INamedTypeSymbol? Timer { get; }

    public INamedTypeSymbol? ITimer { get; }

    public INamedTypeSymbol? Stream { get; }

    public INamedTypeSymbol? TextWriter { get; }

    public INamedTypeSymbol? DbConnection { get; }

    public INamedTypeSymbol? DbCommand { get; }

    public INamedTypeSymbol? DbTransaction { get; }

    public INamedTypeSymbol? DbDataReader { get; }

    public INamedTypeSymbol? DbBatch { get; }

    public INamedTypeSymbol? TaskScope { get; }

    public INamedTypeSymbol? AsyncExitStack { get; }

    public INamedTypeSymbol? WorkQueue { get; }

    public INamedTypeSymbol? PoolLease { get; }

    public INamedTypeSymbol? AsyncPool { get; }

    public INamedTypeSymbol? AsyncContext { get; }

    public INamedTypeSymbol? SemaphoreReleaser { get; }

    public INamedTypeSymbol? SemaphoreSlimExtensions { get; }

    /// <summary>
    /// BCL base classes whose <c>DisposeAsync</c> only calls <c>Dispose</c>: a derived class that does not override it
    /// does no asynchronous work on disposal (a <c>MemoryStream</c>, a <c>StringWriter</c>).
    /// </summary>
    public IReadOnlyList<INamedTypeSymbol?> BaseBehaviourTypes { get; }

    public static KnownTypes From(Compilation compilation) => new(compilation);

    /// <summary>Task, Task&lt;T&gt;, ValueTask or ValueTask&lt;T&gt;.</summary>
    public bool IsTaskLike(ITypeSymbol? type)
    {
        if (type is not INamedTypeSymbol named)
        {
            return false;
        }

        var definition = named.OriginalDefinition;
        return Is(definition, Task) || Is(definition, TaskOfT) || Is(definition, ValueTask) || Is(definition, ValueTaskOfT)
            || (Task is not null && InheritsFrom(named, Task));
    }

    public static bool Is(ITypeSymbol? type, ITypeSymbol? expected) =>
        type is not null && expected is not null && SymbolEqualityComparer.Default.Equals(type.OriginalDefinition, expected);

    public static bool InheritsFrom(ITypeSymbol type, ITypeSymbol baseType)
    {
        for (var current = type.BaseType; current is not null; current = current.BaseType)
        {
            if (Is(current, baseType))
            {
                return true;
            }
        }

        return false;
    }

    public static bool Implements(ITypeSymbol type, ITypeSymbol? @interface)
    {
        if (@interface is null)
        {
            return false;
        }

        if (Is(type, @interface))
        {
            return true;
        }

        foreach (var implemented in type.AllInterfaces)
        {
            if (Is(implemented, @interface))
            {
                return true;
            }
        }

        return false;
    }
}
