class AgentBoxGateway {
  constructor(url, token) {
    this.url = url;
    this.token = token;
    this.ws = null;
    this.handlers = new Map();
    this.pendingRequests = new Map();
    this.msgId = 0;
  }

  connect() {
    return new Promise((resolve, reject) => {
      this.ws = new WebSocket(this.url);

      this.ws.onopen = () => {
        this.auth().then(resolve).catch(reject);
      };

      this.ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        this.handleMessage(msg);
      };

      this.ws.onerror = reject;
    });
  }

  auth() {
    return this.send('auth', { token: this.token });
  }

  subscribe(channel, topics = []) {
    return this.send('subscribe', { channel, topics });
  }

  unsubscribe(channel, topics = []) {
    return this.send('unsubscribe', { channel, topics });
  }

  cancelTask(taskId) {
    return this.send('task.action', {
      task_id: taskId,
      action: 'cancel'
    });
  }

  appendTurn(taskId, prompt) {
    return this.send('task.action', {
      task_id: taskId,
      action: 'append_turn',
      data: prompt
    });
  }

  on(eventType, handler) {
    if (!this.handlers.has(eventType)) {
      this.handlers.set(eventType, []);
    }
    this.handlers.get(eventType).push(handler);
  }

  send(type, payload) {
    return new Promise((resolve, reject) => {
      const id = `msg-${++this.msgId}`;
      const msg = { id, type, payload, timestamp: Date.now() };

      this.pendingRequests.set(id, { resolve, reject });
      this.ws.send(JSON.stringify(msg));

      // 超时处理
      setTimeout(() => {
        if (this.pendingRequests.has(id)) {
          this.pendingRequests.delete(id);
          reject(new Error('Request timeout'));
        }
      }, 30000);
    });
  }

  handleMessage(msg) {
    // 处理请求响应
    if (msg.id && this.pendingRequests.has(msg.id)) {
      const { resolve, reject } = this.pendingRequests.get(msg.id);
      this.pendingRequests.delete(msg.id);

      if (msg.type === 'error') {
        reject(new Error(msg.payload.message));
      } else {
        resolve(msg.payload);
      }
      return;
    }

    // 处理事件推送
    if (msg.type === 'event') {
      const { event_type, data } = msg.payload;
      const handlers = this.handlers.get(event_type) || [];
      handlers.forEach(h => h(data, msg.payload));
    }
  }

  disconnect() {
    if (this.ws) {
      this.ws.close();
    }
  }
}
