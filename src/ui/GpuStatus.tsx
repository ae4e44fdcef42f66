import { useEffect } from 'react';
import { useAppStore } from '../store';

/** Shows whether WebGPU works here, with the adapter's name and features. */
export function GpuStatus() {
  const gpu = useAppStore((s) => s.gpu);
  const probeGpu = useAppStore((s) => s.probeGpu);
  useEffect(() => {
    void probeGpu();
  }, [probeGpu]);

  if (gpu.status === 'idle' || gpu.status === 'probing') return (
      <p role="status" className="gpu-status">
        Checking WebGPU…
      </p>
    );
  if (gpu.status === 'error') return (
      <p role="alert" className="gpu-status error">
        Could not check WebGPU: {gpu.error}
      </p>
    );
  const probe = gpu.probe!;
  if (!probe.available) {
    return (
      <section aria-label="WebGPU status" className="gpu-status">
        <p role="status" data-testid="webgpu-status">WebGPU is not available</p>
        <p>{probe.reason}</p>
      </section>
    );
  }
  const a = probe.adapter!;
  const name = a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unnamed adapter';
  return (
    <section aria-label="WebGPU status" className="gpu-status">
      <p role="status" data-testid="webgpu-status">WebGPU is available</p>
      <dl>
        <dt>Adapter</dt>
        <dd data-testid="adapter-name">{name}</dd>
        <dt>Features</dt>
        <dd data-testid="adapter-features">{probe.features.join(', ') || 'none'}</dd>
        <dt>shader-f16</dt>
        <dd>{probe.features.includes('shader-f16') ? 'yes' : 'no (the native engine does not need it; onnxruntime-web needs it for fp16 files)'}</dd>
      </dl>
    </section>
  );
}
