const fs=require('fs');const f=process.argv[2];const p=JSON.parse(fs.readFileSync(f));
const self=new Map();const byId=new Map();for(const n of p.nodes)byId.set(n.id,n);
const dt=p.timeDeltas;const tot=new Map();
for(let i=0;i<p.samples.length;i++){const n=byId.get(p.samples[i]);const k=n.callFrame.functionName+' '+n.callFrame.url.split('/').slice(-2).join('/')+':'+n.callFrame.lineNumber;self.set(k,(self.get(k)||0)+dt[i]);}
const arr=[...self].sort((a,b)=>b[1]-a[1]).slice(0,+process.argv[3]||30);const sum=[...self.values()].reduce((a,b)=>a+b,0);
for(const [k,v] of arr)console.log((v/1000).toFixed(0).padStart(7),'ms',(100*v/sum).toFixed(1).padStart(5)+'%',k);
