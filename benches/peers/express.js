// GoShiip's JavaScript sample receiver (shared/providers/goshiip.md), as its
// page prints it but for the port and a secret from the environment.
const crypto = require('crypto');
const express = require('express');
const bodyParser = require('body-parser');

const app = express();
app.use(bodyParser.raw({ type: 'application/json' }));

const secret = process.env.GOSHIIP_WEBHOOK_SECRET || 'your_secret_key';

app.post('/webhook', (req, res) => {
    const payload = req.body; // Raw body
    const receivedSignature = req.headers['x-signature'];

    const calculatedSignature = crypto
        .createHmac('sha256', secret)
        .update(payload)
        .digest('hex');

    if (crypto.timingSafeEqual(Buffer.from(calculatedSignature), Buffer.from(receivedSignature))) {
        res.status(200).send('Valid signature');
    } else {
        res.status(403).send('Invalid signature');
    }
});

app.listen(Number(process.env.PORT || 3002), '127.0.0.1');
