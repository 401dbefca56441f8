console.log("serve");
