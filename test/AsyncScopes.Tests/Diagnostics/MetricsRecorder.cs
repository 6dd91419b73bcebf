using System.Diagnostics.Metrics;

namespace AsyncScopes.Tests.Diagnostics;

/// <summary>One measurement of an instrument of meter <see cref="ScopeDiagnostics.MeterName"/>.</summary>
/// <param name="Instrument">The instrument's name.</param>
/// <param name="Value">The measured value.</param>
/// <param name="Tags">The measurement's tags.</param>
/// <param name="Marker">What the recorder's marker read on the thread that recorded it, in its execution context.</param>
internal sealed record RecordedMeasurement(string Instrument, double Value, IReadOnlyDictionary<string, object?> Tags, string? Marker)
{
    public bool Has(string instrument, string tag, string value) =>
        Instrument == instrument && Tags.TryGetValue(tag, out var tagValue) && Equals(tagValue, value);
}

/// <summary>Listens to every instrument of meter <see cref="ScopeDiagnostics.MeterName"/>, and to no other.</summary>
internal sealed class MetricsRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<RecordedMeasurement> _measurements = [];
    private readonly Lock _lock = new();
    private readonly Func<string?>? _marker;

    public MetricsRecorder(Func<string?>? marker = null)
    {
        _marker = marker;
        _listener.InstrumentPublished = static (instrument, listener) =>
        {
            if (instrument.Meter.Name == ScopeDiagnostics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    /// <summary>Every measurement recorded so far.</summary>
    public IReadOnlyList<RecordedMeasurement> Measurements
    {
        get
        {
            lock (_lock)
            {
                return [.. _measurements];
            }
        }
    }

    /// <summary>Reads the observable instruments now; returns what that reading measured.</summary>
    public IReadOnlyList<RecordedMeasurement> Observe()
    {
        int start;
        lock (_lock)
        {
            start = _measurements.Count;
        }

        _listener.RecordObservableInstruments();
        lock (_lock)
        {
            return [.. _measurements.Skip(start).Where(m => m.Instrument is
                "asyncscopes.pool.size" or "asyncscopes.pool.in_use" or "asyncscopes.pool.idle" or "asyncscopes.pool.waiters" or "asyncscopes.queue.depth")];
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var tagMap = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            tagMap[tag.Key] = tag.Value;
        }

        var measurement = new RecordedMeasurement(instrument.Name, value, tagMap, _marker?.Invoke());
        lock (_lock)
        {
            _measurements.Add(measurement);
        }
    }
}
