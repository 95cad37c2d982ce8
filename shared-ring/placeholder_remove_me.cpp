// Keeps pvnet_ring non-empty until the ring sources land; delete when shared-ring has a .cpp of its own.
namespace pvnet { int ring_placeholder = 0; }
